package etcdhost

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI makes a CA and certificates signed by it, in the test.
type testPKI struct {
	t      *testing.T
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	serial int64
}

func newTestPKI(t *testing.T, notBefore, notAfter time.Time) *testPKI {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &testPKI{t: t, ca: ca, caKey: key, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1}
}

func (p *testPKI) leaf(notBefore, notAfter time.Time, eku []x509.ExtKeyUsage, sans ...string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: "etcd"},
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: eku, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

var (
	clock   = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	bothEKU = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

// kubeaszConfig uses one cert for server and peer, one CA for both, as kubeasz does.
func kubeaszConfig() *EtcdConfig {
	return &EtcdConfig{Name: "etcd-10.0.0.1", ClientURLs: "https://10.0.0.1:2379", PeerURL: "https://10.0.0.1:2380",
		CertFile: "/ssl/etcd.pem", PeerCertFile: "/ssl/etcd.pem", TrustedCAFile: "/ssl/ca.pem", PeerTrustedCAFile: "/ssl/ca.pem",
		From: map[string]string{"cert-file": "ExecStart --cert-file", "peer-cert-file": "ExecStart --peer-cert-file",
			"trusted-ca-file": "ExecStart --trusted-ca-file", "peer-trusted-ca-file": "ExecStart --peer-trusted-ca-file"}}
}

// files parses contents per path as GatherEtcd does.
func files(t *testing.T, c *EtcdConfig, contents map[string][]byte) []*CertFile {
	fs := c.CertFiles()
	for _, cf := range fs {
		data, ok := contents[cf.Path]
		if !ok {
			cf.Err = "cat: " + cf.Path + ": No such file or directory"
			continue
		}
		cf.parse(data)
	}
	return fs
}

func TestCertFilesEachPathOnce(t *testing.T) {
	fs := kubeaszConfig().CertFiles()
	if len(fs) != 2 || fs[0].Path != "/ssl/etcd.pem" || fs[1].Path != "/ssl/ca.pem" {
		t.Fatalf("want etcd.pem and ca.pem once each, got %+v", fs)
	}
	if !fs[0].usedAs("cert-file") || !fs[0].usedAs("peer-cert-file") || fs[0].usedAs("trusted-ca-file") {
		t.Fatalf("etcd.pem uses: %+v", fs[0].Uses)
	}
	if len((&EtcdConfig{}).CertFiles()) != 0 {
		t.Fatal("a unit without TLS has no certificate files")
	}
}

func TestPeerCertsFromConfigFile(t *testing.T) {
	u, err := ParseUnit("[Service]\nExecStart=/usr/bin/etcd --config-file=/etc/etcd.yml\n")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ResolveEtcd(u, map[string]string{"/etc/etcd.yml": `
name: a
peer-transport-security:
  cert-file: /p/peer.pem
  trusted-ca-file: /p/ca.pem
client-transport-security:
  cert-file: /c/server.pem
`})
	if err != nil {
		t.Fatal(err)
	}
	if c.PeerCertFile != "/p/peer.pem" || c.PeerTrustedCAFile != "/p/ca.pem" || c.CertFile != "/c/server.pem" {
		t.Fatalf("got %+v", c)
	}
	if !strings.Contains(c.From["peer-cert-file"], "peer-transport-security.cert-file") {
		t.Fatalf("from: %v", c.From)
	}
}

func TestCheckCerts(t *testing.T) {
	pki := newTestPKI(t, clock.AddDate(-1, 0, 0), clock.AddDate(9, 0, 0))
	good := pki.leaf(clock.AddDate(0, -1, 0), clock.AddDate(1, 0, 0), bothEKU, "127.0.0.1", "10.0.0.1", "localhost")
	cases := []struct {
		name         string
		cert, ca     []byte
		config       func(*EtcdConfig)
		wantProblems []string // each must appear in one problem; none means no problems
		wantWarnings []string
	}{
		{name: "valid", cert: good, ca: pki.caPEM},
		{name: "expired", cert: pki.leaf(clock.AddDate(-1, 0, 0), clock.Add(-time.Hour), bothEKU, "10.0.0.1"), ca: pki.caPEM,
			wantProblems: []string{"/ssl/etcd.pem (--cert-file, --peer-cert-file) has expired", "to 2030-06-01 11:00:00 UTC", "SANs 10.0.0.1", "Renew it"}},
		{name: "not yet valid", cert: pki.leaf(clock.Add(48*time.Hour), clock.AddDate(1, 0, 0), bothEKU, "10.0.0.1"), ca: pki.caPEM,
			wantProblems: []string{"is not valid yet", "valid from 2030-06-03 12:00:00 UTC", "clock says 2030-06-01 12:00:00 UTC"}},
		{name: "wrong SAN", cert: pki.leaf(clock.AddDate(0, -1, 0), clock.AddDate(1, 0, 0), bothEKU, "10.0.0.2", "etcd.example"), ca: pki.caPEM,
			wantProblems: []string{"does not cover 10.0.0.1 of advertise-client-urls https://10.0.0.1:2379: its SANs are etcd.example, 10.0.0.2",
				"does not cover 10.0.0.1 of initial-advertise-peer-urls"}},
		{name: "under 30 days", cert: pki.leaf(clock.AddDate(0, -1, 0), clock.Add(10*24*time.Hour+time.Hour), bothEKU, "10.0.0.1"), ca: pki.caPEM,
			wantWarnings: []string{"/ssl/etcd.pem (--cert-file, --peer-cert-file) expires in 10 days (2030-06-11 13:00:00 UTC)"}},
		{name: "expired CA", cert: good, ca: newTestPKI(t, clock.AddDate(-10, 0, 0), clock.AddDate(0, 0, -1)).caPEM,
			wantProblems: []string{"/ssl/ca.pem (--trusted-ca-file, --peer-trusted-ca-file) has expired"}},
		{name: "missing file", cert: good,
			wantProblems: []string{"certificate file /ssl/ca.pem (--trusted-ca-file, --peer-trusted-ca-file): cat: /ssl/ca.pem: No such file"}},
		{name: "not a certificate", cert: []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), ca: pki.caPEM,
			wantProblems: []string{"/ssl/etcd.pem (--cert-file, --peer-cert-file): holds no PEM certificate"}},
		{name: "server-only EKU", cert: pki.leaf(clock.AddDate(0, -1, 0), clock.AddDate(1, 0, 0), []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "10.0.0.1"), ca: pki.caPEM,
			wantWarnings: []string{"lacks clientAuth"}},
		{name: "http client URL needs no SAN", cert: pki.leaf(clock.AddDate(0, -1, 0), clock.AddDate(1, 0, 0), bothEKU, "10.0.0.1"), ca: pki.caPEM,
			config: func(c *EtcdConfig) { c.ClientURLs = "http://127.0.0.5:2379,https://10.0.0.1:2379" }},
		{name: "DNS names match", cert: pki.leaf(clock.AddDate(0, -1, 0), clock.AddDate(1, 0, 0), bothEKU, "*.etcd.example"), ca: pki.caPEM,
			config: func(c *EtcdConfig) {
				c.ClientURLs, c.PeerURL = "https://m1.etcd.example:2379", "https://m1.etcd.example:2380"
			}},
		{name: "from a config file", cert: pki.leaf(clock.AddDate(-1, 0, 0), clock.Add(-time.Hour), bothEKU, "10.0.0.1"), ca: pki.caPEM,
			config: func(c *EtcdConfig) {
				c.From["cert-file"] = "config file /etc/etcd.yml (client-transport-security.cert-file)"
			},
			wantProblems: []string{"/ssl/etcd.pem (--cert-file from config file /etc/etcd.yml (client-transport-security.cert-file), --peer-cert-file) has expired"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := kubeaszConfig()
			if tc.config != nil {
				tc.config(c)
			}
			contents := map[string][]byte{"/ssl/etcd.pem": tc.cert}
			if tc.ca != nil {
				contents["/ssl/ca.pem"] = tc.ca
			}
			problems, warnings := CheckCerts(c, files(t, c, contents), clock)
			requireAll(t, "problems", problems, tc.wantProblems)
			requireAll(t, "warnings", warnings, tc.wantWarnings)
		})
	}
}

// requireAll: got is empty when want is, else each want is in some line of got.
func requireAll(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(want) == 0 && len(got) > 0 {
		t.Fatalf("want no %s, got:\n%s", what, strings.Join(got, "\n"))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, w)
		}
		if !found {
			t.Errorf("%s lack %q; got:\n%s", what, w, strings.Join(got, "\n"))
		}
	}
}

func TestEarliestExpiry(t *testing.T) {
	pki := newTestPKI(t, clock.AddDate(-1, 0, 0), clock.AddDate(9, 0, 0))
	mk := func(host string, leafEnd time.Time) *EtcdFacts {
		c := kubeaszConfig()
		return &EtcdFacts{Host: host, Config: c, Certs: files(t, c, map[string][]byte{
			"/ssl/etcd.pem": pki.leaf(clock.AddDate(-1, 0, 0), leafEnd, bothEKU, "10.0.0.1"),
			"/ssl/ca.pem":   pki.caPEM})}
	}
	facts := []*EtcdFacts{mk("a", clock.AddDate(2, 0, 0)), nil, mk("b", clock.AddDate(0, 0, 20)), mk("c", clock.AddDate(1, 0, 0))}
	e := EarliestExpiry(facts)
	if e == nil || e.Host != "b" || e.File != "/ssl/etcd.pem" || !e.NotAfter.Equal(clock.AddDate(0, 0, 20)) {
		t.Fatalf("got %+v", e)
	}
	if got := e.Text(clock); got != "/ssl/etcd.pem on b (--cert-file, --peer-cert-file), 2030-06-21 12:00:00 UTC, in 20 days" {
		t.Fatalf("text %q", got)
	}
	if got := e.Text(clock.AddDate(0, 0, 23)); !strings.Contains(got, "EXPIRED 3 days ago") {
		t.Fatalf("text %q", got)
	}
	if got := e.Text(clock.AddDate(0, 0, 20).Add(5 * time.Hour)); !strings.HasSuffix(got, "EXPIRED 5 hours ago") {
		t.Fatalf("text %q", got)
	}
	if got := e.Text(clock.AddDate(0, 0, 19)); !strings.HasSuffix(got, "in 24 hours") {
		t.Fatalf("text %q", got)
	}
	// The CA expiring first is the one shown.
	facts = append(facts, mk("d", clock.AddDate(20, 0, 0)))
	facts[0].Certs[0].Certs[0].NotAfter = clock.AddDate(30, 0, 0)
	if e := EarliestExpiry([]*EtcdFacts{facts[4]}); e.File != "/ssl/ca.pem" {
		t.Fatalf("want the CA (expires in 9 years) before the leaf (20), got %+v", e)
	}
	if EarliestExpiry([]*EtcdFacts{nil, {Host: "x"}}) != nil {
		t.Fatal("no certificates, no expiry")
	}
}

func TestCatScriptKeepsMarkersOnTheirOwnLine(t *testing.T) {
	// Run the script with the local shell: a file without a final newline
	// must not swallow the next marker, and a missing one is marked.
	dir := t.TempDir()
	noNewline := filepath.Join(dir, "it's a.pem")
	if err := os.WriteFile(noNewline, []byte("-----END CERTIFICATE-----"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := catScript("cert0", noNewline) + catScript("cert1", filepath.Join(dir, "missing.pem")) + "echo @@after; echo done\n"
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	s := Sections(string(out))
	if s["cert0"] != "-----END CERTIFICATE-----" {
		t.Fatalf("cert0 %q in %q", s["cert0"], out)
	}
	if _, ok := s["nocert0"]; ok {
		t.Fatalf("a readable file marked missing: %q", out)
	}
	if _, ok := s["nocert1"]; !ok || !strings.Contains(s["cert1"], "No such file") || s["after"] != "done" {
		t.Fatalf("sections %q", s)
	}
}
