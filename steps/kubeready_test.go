package steps

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/kubeapi"
	"github.com/ezrestore/ezrestore/orchestrator"
)

type apiPKI struct {
	caPEM, certPEM, keyPEM []byte
	server                 tls.Certificate
	pool                   *x509.CertPool
}

func issueCert(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, signer *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	kd, _ := x509.MarshalECPrivateKey(key)
	return c, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func newAPIPKI(t *testing.T) *apiPKI {
	now := time.Now()
	ca, caKey, caPEM, _ := issueCert(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	_, _, srvPEM, srvKey := issueCert(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	_, _, cliPEM, cliKey := issueCert(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	server, err := tls.X509KeyPair(srvPEM, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &apiPKI{caPEM: caPEM, certPEM: cliPEM, keyPEM: cliKey, server: server, pool: pool}
}

// apiserver is a TLS server that requires a client certificate of the CA.
func (p *apiPKI) apiserver(t *testing.T, h http.HandlerFunc) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (p *apiPKI) kubeconfig(t *testing.T, inline bool) string {
	dir := t.TempDir()
	b64 := base64.StdEncoding.EncodeToString
	var ca, user string
	if inline {
		ca = "certificate-authority-data: " + b64(p.caPEM)
		user = "client-certificate-data: " + b64(p.certPEM) + "\n    client-key-data: " + b64(p.keyPEM)
	} else {
		for name, b := range map[string][]byte{"ca.pem": p.caPEM, "admin.pem": p.certPEM, "admin-key.pem": p.keyPEM} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		ca = "certificate-authority: ca.pem"
		user = "client-certificate: admin.pem\n    client-key: " + filepath.Join(dir, "admin-key.pem")
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    %s
    server: https://127.0.0.1:6443
  name: cluster1
contexts:
- context:
    cluster: cluster1
    user: admin
  name: context-cluster1
current-context: context-cluster1
users:
- name: admin
  user:
    %s
`, ca, user)
	path := filepath.Join(dir, kubeapi.KubeconfigName)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubeconfigReachesAVerifiedAPIServer(t *testing.T) {
	p := newAPIPKI(t)
	s := p.apiserver(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	for _, inline := range []bool{true, false} {
		k, err := kubeapi.LoadKubeconfig(p.kubeconfig(t, inline))
		if err != nil {
			t.Fatalf("inline=%v: %v", inline, err)
		}
		c, _ := k.Client()
		code, body, err := kubeapi.Get(context.Background(), c, s.URL+"/readyz")
		if err != nil || code != 200 || string(body) != "ok" {
			t.Fatalf("inline=%v: %d %q %v", inline, code, body, err)
		}
	}
	// A server whose certificate another CA signed is refused.
	other := newAPIPKI(t)
	k, err := kubeapi.LoadKubeconfig(other.kubeconfig(t, true))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := k.Client()
	if _, _, err := kubeapi.Get(context.Background(), c, s.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a foreign CA's server was trusted: %v", err)
	}
}

func TestLoadKubeconfigRefusesTokenUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), kubeapi.KubeconfigName)
	os.WriteFile(path, []byte("clusters:\n- name: c\n  cluster:\n    certificate-authority-data: eA==\nusers:\n- name: u\n  user:\n    token: abc\n"), 0o600)
	if _, err := kubeapi.LoadKubeconfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("want an error naming %s, got %v", path, err)
	}
}

func TestKubeReadyWaitsForOkAndNamesTheHostOnTimeout(t *testing.T) {
	p := newAPIPKI(t)
	var calls atomic.Int32
	s := p.apiserver(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "[-]etcd failed: reason withheld\nreadyz check failed")
			return
		}
		fmt.Fprint(w, "ok")
	})
	k, err := kubeapi.LoadKubeconfig(p.kubeconfig(t, true))
	if err != nil {
		t.Fatal(err)
	}
	r := &Restore{Kube: k, HealthTimeout: 10 * time.Second}
	kr := &KubeReady{r}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "https://"))
	hosts := []*inventory.Host{{Name: "m1", Address: host, Vars: map[string]string{"SECURE_PORT": port}}}
	env := &orchestrator.Env{Forks: 1}
	sp, err := kr.Plan(context.Background(), env, nil, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.Tasks) != 1 || sp.Tasks[0].Ops[0].Payload.(kubeReadyPayload).URL != s.URL {
		t.Fatalf("plan: %+v", sp.Tasks)
	}
	res, err := kr.Exec(context.Background(), env, sp.Tasks[0], sp.Tasks[0].Ops[0], nil)
	if err != nil || calls.Load() < 3 {
		t.Fatalf("Exec: %v after %d calls", err, calls.Load())
	}
	t.Log(res.Message)

	// Never ready: the error names the host and the failing check.
	calls.Store(-1 << 20)
	r.HealthTimeout = 1500 * time.Millisecond
	_, err = kr.Exec(context.Background(), env, sp.Tasks[0], sp.Tasks[0].Ops[0], nil)
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver on m1 is not ready") || !strings.Contains(err.Error(), "[-]etcd failed") {
		t.Fatalf("want a timeout naming m1 and the failed check, got %v", err)
	}
}

func TestKubeStepsPlanANoteWithoutAnAPI(t *testing.T) {
	hosts := []*inventory.Host{{Name: "m1", Address: "127.0.0.1"}}
	for _, r := range []*Restore{{NoAPICheck: true}, {KubeMissing: "no kubectl.kubeconfig in /x"}} {
		sp, err := (&KubeReady{r}).Plan(context.Background(), &orchestrator.Env{}, nil, hosts)
		if err != nil || len(sp.Tasks) != 0 || len(sp.Notes) != 1 || !strings.HasPrefix(sp.Notes[0], "skipped: ") {
			t.Errorf("%+v: %+v %v", r, sp, err)
		}
	}
}

func TestHopelessNamesTheUnit(t *testing.T) {
	got := hopeless(apiserverUnit, map[string]unitState{}, map[string]unitState{
		"a": {Active: "failed", Result: "exit-code"}, "b": {Active: "activating", Sub: "auto-restart"}, "c": {Active: "active", Sub: "running"}})
	if len(got) != 2 || !strings.Contains(got["a"], "kube-apiserver.service failed") || !strings.Contains(got["b"], "keeps restarting") {
		t.Fatalf("%v", got)
	}
}
