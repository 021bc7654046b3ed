package restore_test

// End-to-end tests of preflight's version and certificate checks on the lab:
// a 3.6 member whose only restore tool is Debian's etcdctl 3.4, and a member
// whose server certificate has expired. Each must be refused by `plan`
// before any change, naming the host, the versions or the file and dates.

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

func TestPreflightVersionsAndCertificates(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "pf-versions", EtcdVersion: "3.6", Nodes: -1})
	seedKeys(t, l)
	saveSnapshot(t, l, "seed.db")
	third := l.EtcdHosts()[2].Address
	server := sh(t, l, third, lab.BinDir+"/etcd --version | head -n 1")
	serverVersion := regexp.MustCompile(`3\.6\.\d+`).FindString(server)
	if serverVersion == "" {
		t.Fatalf("the lab's etcd is not 3.6: %q", server)
	}

	// A healthy lab plans, naming the server version and the certificates.
	out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db")
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	for _, w := range []string{third + ": ok: etcd server " + serverVersion + " (" + lab.BinDir + "/etcd); restore tool etcdutl " + serverVersion,
		"2 certificate files valid, the first to expire: /etc/kubernetes/ssl/"} {
		if !strings.Contains(out, w) {
			t.Errorf("plan lacks %q", w)
		}
	}
	before := allStates(t, l)

	t.Run("etcdctl 3.4 on PATH beside etcd 3.6", func(t *testing.T) {
		// Only Debian's etcdctl is left on this member.
		sh(t, l, third, "mv "+lab.BinDir+"/etcdutl "+lab.BinDir+"/etcdutl.hidden && mv "+lab.BinDir+"/etcdctl "+lab.BinDir+"/etcdctl.hidden")
		defer sh(t, l, third, "mv "+lab.BinDir+"/etcdutl.hidden "+lab.BinDir+"/etcdutl && mv "+lab.BinDir+"/etcdctl.hidden "+lab.BinDir+"/etcdctl")
		debian := sh(t, l, third, "command -v etcdctl && ETCDCTL_API=3 etcdctl version | head -n 1")
		debianVersion := regexp.MustCompile(`3\.4\.\d+`).FindString(debian)
		if !strings.HasPrefix(debian, "/usr/bin/etcdctl\n") || debianVersion == "" {
			t.Fatalf("the lab should have Debian's etcdctl 3.4 on PATH: %q", debian)
		}
		out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db")
		if err == nil {
			t.Fatal("plan accepted an etcdctl 3.4 restore tool for an etcd 3.6 member")
		}
		for _, w := range []string{`step "preflight"`, "host " + third + ":",
			"etcd server " + serverVersion + " (" + lab.BinDir + "/etcd)",
			"etcdctl " + debianVersion + " (/usr/bin/etcdctl, found on PATH, not in bin_dir " + lab.BinDir + ")",
			"member unknown", "Install etcdutl " + serverVersion + " into bin_dir " + lab.BinDir, "Nothing was changed"} {
			if !strings.Contains(out, w) {
				t.Errorf("refusal lacks %q", w)
			}
		}
		for _, h := range l.EtcdHosts()[:2] {
			if strings.Contains(out, "host "+h.Address+":") {
				t.Errorf("refusal blames %s, whose tools are right", h.Address)
			}
		}
		requireUnchanged(t, l, before, "a plan refused for versions")
	})

	t.Run("etcdutl from PATH is a warning", func(t *testing.T) {
		sh(t, l, third, "mv "+lab.BinDir+"/etcdutl /usr/local/bin/etcdutl")
		defer sh(t, l, third, "mv /usr/local/bin/etcdutl "+lab.BinDir+"/etcdutl")
		out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db")
		if err != nil {
			t.Fatalf("plan with etcdutl %s on PATH: %v", serverVersion, err)
		}
		want := "warning: no etcdutl in bin_dir " + lab.BinDir + ": using /usr/local/bin/etcdutl (etcdutl " + serverVersion + ") from PATH"
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q", want)
		}
		requireUnchanged(t, l, before, "plan")
	})

	t.Run("expired server certificate", func(t *testing.T) {
		const certFile = lab.CADir + "/etcd.pem"
		notAfter := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
		expired := reissue(t, l, third, certFile, notAfter)
		sh(t, l, third, "cp -p "+certFile+" /root/etcd.pem.orig && echo "+base64.StdEncoding.EncodeToString(expired)+" | base64 -d > "+certFile)
		defer sh(t, l, third, "cp -p /root/etcd.pem.orig "+certFile)

		out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db")
		if err == nil {
			t.Fatal("plan accepted an expired certificate")
		}
		for _, w := range []string{`step "preflight"`, "host " + third + ":",
			"certificate " + certFile + " (--cert-file, --peer-cert-file) has expired",
			"to " + notAfter.UTC().Format("2006-01-02 15:04:05 UTC"), "SANs localhost, 127.0.0.1, ", third,
			"Renew it with the cluster's CA", "Nothing was changed"} {
			if !strings.Contains(out, w) {
				t.Errorf("refusal lacks %q", w)
			}
		}
		requireUnchanged(t, l, before, "a plan refused for an expired certificate")

		// status names the file, the host and the date; that member itself
		// no longer answers etcdctl with its expired certificate.
		out, _ = cli(t, l, "status", l.Opts.Name)
		want := "Earliest certificate expiry: " + certFile + " on " + third + " (--cert-file, --peer-cert-file), " + notAfter.UTC().Format("2006-01-02 15:04:05 UTC") + ", EXPIRED 2 hours ago"
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q", want)
		}
		requireUnchanged(t, l, before, "status")
	})

	// Everything put back: the plan goes through again.
	if _, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db"); err != nil {
		t.Fatalf("plan after putting everything back: %v", err)
	}
	requireHealthy(t, l)
}

// reissue signs, with the lab's CA, a copy of a host's certificate (same key,
// subject and SANs) that ended at notAfter.
func reissue(t *testing.T, l *lab.Lab, addr, certFile string, notAfter time.Time) []byte {
	t.Helper()
	readPEM := func(path string) *pem.Block {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(data)
		if b == nil {
			t.Fatalf("%s: no PEM block", path)
		}
		return b
	}
	ssl := l.Dir.SSLDir()
	ca, err := x509.ParseCertificate(readPEM(filepath.Join(ssl, "ca.pem")).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParseECPrivateKey(readPEM(filepath.Join(ssl, "ca-key.pem")).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	hostPEM, _ := pem.Decode([]byte(sh(t, l, addr, "cat "+certFile)))
	if hostPEM == nil {
		t.Fatalf("%s on %s: no PEM block", certFile, addr)
	}
	old, err := x509.ParseCertificate(hostPEM.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *old
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = notAfter.AddDate(-1, 0, 0), notAfter
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, old.PublicKey.(*ecdsa.PublicKey), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
