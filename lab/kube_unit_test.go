package lab

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The lab embeds lab/kubebuild's files; they must not drift apart.
func TestKubebuildSourcesMatch(t *testing.T) {
	for name, want := range kubebuildFiles {
		got, err := os.ReadFile(filepath.Join("kubebuild", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("lab/kubebuild/%s differs from kubebuildFiles[%q] in kube.go", name, name)
		}
	}
	if _, err := os.Stat(filepath.Join("kubebuild", "doc.go")); err != nil {
		t.Error(err)
	}
}

func TestKubeHashFollowsRecipe(t *testing.T) {
	h := KubeHash()
	old := kubebuildFiles["kube/main.go"]
	kubebuildFiles["kube/main.go"] = old + "\n"
	defer func() { kubebuildFiles["kube/main.go"] = old }()
	if KubeHash() == h {
		t.Fatal("kube hash ignores the build module's files")
	}
	if !strings.Contains(KubeDir(), "kube-"+KubeVersion+"-") {
		t.Fatalf("KubeDir %s does not name the version", KubeDir())
	}
}

func TestStagingModules(t *testing.T) {
	mods, err := stagingModules(strings.NewReader(`module k8s.io/kubernetes

require k8s.io/api v0.0.0

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	github.com/x/y => github.com/x/z v1.0.0
)

replace k8s.io/kubectl => ./staging/src/k8s.io/kubectl
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(mods, " "); got != "k8s.io/api k8s.io/client-go k8s.io/kubectl" {
		t.Fatalf("staging modules: %s", got)
	}
	if _, err := stagingModules(strings.NewReader("module k8s.io/kubernetes\n")); err == nil {
		t.Fatal("a go.mod without staging replaces was accepted")
	}
}

func TestKubeLDFlagsStampVersion(t *testing.T) {
	f := kubeLDFlags("2026-01-02T03:04:05Z")
	for _, want := range []string{
		"k8s.io/component-base/version.gitVersion=v" + KubeVersion,
		"k8s.io/component-base/version.gitMajor=1",
		"k8s.io/component-base/version.gitMinor=" + strings.Split(KubeVersion, ".")[1],
		"k8s.io/component-base/version.buildDate=2026-01-02T03:04:05Z",
	} {
		if !strings.Contains(f, want) {
			t.Errorf("ldflags lack %s: %s", want, f)
		}
	}
}

func TestKubeOptions(t *testing.T) {
	o := Options{Name: "x", Base: "/tmp/b"}
	if err := o.normalize(); err != nil || o.Kube != KubeStandIn || o.EtcdVersion != "" {
		t.Fatalf("default: %v kube=%q etcd=%q", err, o.Kube, o.EtcdVersion)
	}
	o = Options{Name: "x", Base: "/tmp/b", Kube: KubeReal}
	if err := o.normalize(); err != nil || o.EtcdVersion != "3.6" {
		t.Fatalf("real: %v etcd=%q, want 3.6", err, o.EtcdVersion)
	}
	o = Options{Name: "x", Base: "/tmp/b", Kube: KubeReal, EtcdVersion: "3.5"}
	if err := o.normalize(); err != nil || o.EtcdVersion != "3.5" {
		t.Fatalf("real with 3.5: %v etcd=%q", err, o.EtcdVersion)
	}
	for _, bad := range []Options{{Name: "x", Kube: KubeReal, EtcdVersion: "3.4"}, {Name: "x", Kube: "fake"}} {
		if err := bad.normalize(); err == nil {
			t.Errorf("normalize(%+v) accepted", bad)
		}
	}
}

func realLab(t *testing.T) *Lab {
	t.Helper()
	o := Options{Name: "x", Base: "/tmp/b", Kube: KubeReal}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	return &Lab{Opts: o, Hosts: topology(o)}
}

// Hosts share one network namespace: every listener of the control plane
// must be on the master's own address, never a wildcard or 127.0.0.1.
func TestKubeUnitsBindTheHostAddress(t *testing.T) {
	l := realLab(t)
	for _, h := range l.Masters() {
		units := map[string]string{
			"kube-apiserver":          l.apiserverUnit(h),
			"kube-controller-manager": controllerManagerUnit(h),
			"kube-scheduler":          schedulerUnit(h),
		}
		port := map[string]string{"kube-apiserver": "6443", "kube-controller-manager": "10257", "kube-scheduler": "10259"}
		for name, u := range units {
			if !strings.Contains(u, "--bind-address="+h.Address+" \\\n") || !strings.Contains(u, "--secure-port="+port[name]+" \\\n") {
				t.Errorf("%s on %s: not bound to %s:%s:\n%s", name, h.Address, h.Address, port[name], u)
			}
			if strings.Contains(u, "0.0.0.0") || strings.Contains(u, "127.0.0.1") {
				t.Errorf("%s on %s names a shared address:\n%s", name, h.Address, u)
			}
			if !strings.Contains(u, "ExecStart="+BinDir+"/"+name+" \\\n") {
				t.Errorf("%s: ExecStart:\n%s", name, u)
			}
		}
		api := units["kube-apiserver"]
		for _, want := range []string{"--authorization-mode=Node,RBAC", "--client-ca-file=/etc/kubernetes/ssl/ca.pem",
			"--etcd-certfile=/etc/kubernetes/ssl/kubernetes.pem", "--service-account-issuer=", "--service-account-signing-key-file=",
			"--tls-cert-file=/etc/kubernetes/ssl/kubernetes.pem", "--service-cluster-ip-range=" + ServiceCIDR, "Type=notify"} {
			if !strings.Contains(api, want) {
				t.Errorf("kube-apiserver unit lacks %s", want)
			}
		}
		eps := regexp.MustCompile(`--etcd-servers=(\S+)`).FindStringSubmatch(api)
		if eps == nil || len(strings.Split(eps[1], ",")) != len(l.EtcdHosts()) || !strings.HasPrefix(eps[1], "https://") {
			t.Errorf("--etcd-servers: %v", eps)
		}
	}
}

func TestKubeCerts(t *testing.T) {
	l := realLab(t)
	var ips []string
	for _, h := range l.Masters() {
		ips = append(ips, h.Address)
	}
	c, err := newCerts(ips)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.addKubeCerts(ips); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(c.CA)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	parse := func(kp keyPair) *x509.Certificate {
		b, _ := pem.Decode(kp.Cert)
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	api := parse(c.Kube.Kubernetes)
	for _, ip := range append(ips, serviceAPIAddr) {
		if _, err := api.Verify(x509.VerifyOptions{Roots: roots, DNSName: ip, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("apiserver certificate for %s: %v", ip, err)
		}
	}
	if _, err := api.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("apiserver certificate as etcd client: %v", err)
	}
	for _, x := range []struct {
		kp     keyPair
		cn, og string
	}{
		{c.Kube.Admin, "admin", "system:masters"},
		{c.Kube.ControllerManager, "system:kube-controller-manager", "system:kube-controller-manager"},
		{c.Kube.Scheduler, "system:kube-scheduler", "system:kube-scheduler"},
	} {
		cert := parse(x.kp)
		if cert.Subject.CommonName != x.cn || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != x.og {
			t.Errorf("%s: subject %v", x.cn, cert.Subject)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", x.cn, err)
		}
	}
	kc := kubeconfig("x", apiURL(ips[0]), "admin", c.CA, c.Kube.Admin)
	m := regexp.MustCompile(`client-certificate-data: (\S+)`).FindStringSubmatch(kc)
	if m == nil {
		t.Fatalf("kubeconfig:\n%s", kc)
	}
	if der, err := base64.StdEncoding.DecodeString(m[1]); err != nil || string(der) != string(c.Kube.Admin.Cert) {
		t.Errorf("kubeconfig's client certificate is not the admin's: %v", err)
	}
	if !strings.Contains(kc, "server: https://"+net.JoinHostPort(ips[0], "6443")+"\n") {
		t.Errorf("kubeconfig server:\n%s", kc)
	}
}
