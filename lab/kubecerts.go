package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// kubeasz's network settings (example/hosts.multi-node); the lab routes no
// traffic to them, the apiserver and controller-manager only need them set.
const (
	KubeSecurePort = 6443
	ServiceCIDR    = "10.68.0.0/16"
	ClusterCIDR    = "172.20.0.0/16"
	NodePortRange  = "30000-32767"
	// serviceAPIAddr is the first address of ServiceCIDR, the in-cluster
	// `kubernetes` service, which the apiserver's certificate must name.
	serviceAPIAddr = "10.68.0.1"
)

// keyPair is one certificate and its key, PEM.
type keyPair struct{ Cert, Key []byte }

// kubeCerts are the control plane's certificates, named as kubeasz names
// them: kubernetes (the apiserver's serving certificate, also its etcd
// client certificate), admin (kubectl, group system:masters), and the
// controller-manager's and scheduler's client certificates, whose names
// the built-in RBAC roles are bound to.
type kubeCerts struct {
	Kubernetes, Admin, ControllerManager, Scheduler keyPair
	// EncryptionConfig is the apiservers' (encryption.go).
	EncryptionConfig []byte
}

// issue signs a certificate for tmpl with the lab's CA.
func (c *certs) issue(tmpl *x509.Certificate) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return keyPair{}, err
	}
	now := time.Now().Add(-time.Hour)
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = now, now.AddDate(10, 0, 0)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &key.PublicKey, c.caPriv)
	if err != nil {
		return keyPair{}, err
	}
	kp := keyPair{Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	if kp.Key, err = ecKeyPEM(key); err != nil {
		return keyPair{}, err
	}
	return kp, nil
}

// addKubeCerts issues the control plane's certificates; the apiserver's
// names every master's address, 127.0.0.1 and the `kubernetes` service.
func (c *certs) addKubeCerts(masterIPs []string) error {
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceAPIAddr)}
	for _, ip := range masterIPs {
		ips = append(ips, net.ParseIP(ip))
	}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	k := &kubeCerts{}
	for _, x := range []struct {
		kp   *keyPair
		tmpl *x509.Certificate
	}{
		{&k.Kubernetes, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "kubernetes", Organization: []string{"k8s"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: ips,
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local"},
		}},
		{&k.Admin, &x509.Certificate{
			Subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}}, ExtKeyUsage: client}},
		{&k.ControllerManager, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:kube-controller-manager", Organization: []string{"system:kube-controller-manager"}},
			ExtKeyUsage: client}},
		{&k.Scheduler, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:kube-scheduler", Organization: []string{"system:kube-scheduler"}},
			ExtKeyUsage: client}},
	} {
		kp, err := c.issue(x.tmpl)
		if err != nil {
			return fmt.Errorf("issuing %s: %w", x.tmpl.Subject.CommonName, err)
		}
		*x.kp = kp
	}
	var err error
	if k.EncryptionConfig, err = newEncryptionConfig(); err != nil {
		return err
	}
	c.Kube = k
	return nil
}

// kubeconfig renders a kubeconfig with embedded credentials, as kubeasz's
// `kubectl config ... --embed-certs=true` writes them.
func kubeconfig(cluster, server, user string, ca []byte, kp keyPair) string {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: %[4]s
    server: %[2]s
  name: %[1]s
contexts:
- context:
    cluster: %[1]s
    user: %[3]s
  name: context-%[1]s
current-context: context-%[1]s
preferences: {}
users:
- name: %[3]s
  user:
    client-certificate-data: %[5]s
    client-key-data: %[6]s
`, cluster, server, user, b64(ca), b64(kp.Cert), b64(kp.Key))
}
