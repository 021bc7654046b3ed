package lab

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// certs is the lab's PKI as kubeasz lays it out: one CA, and one etcd
// certificate (server and client use, every etcd host's IP in its SANs) that
// etcd uses for clients and peers and etcdctl uses to log in.
type certs struct {
	CA, CAKey, Etcd, EtcdKey []byte // PEM
	// Kube is the real control plane's certificates (kubecerts.go), nil
	// with stand-ins.
	Kube *kubeCerts

	caCert *x509.Certificate
	caPriv *ecdsa.PrivateKey
}

func newCerts(etcdIPs []string) (*certs, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubernetes-ca", Organization: []string{"ezrestore lab"}},
		NotBefore:             now,
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	etcdKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	for _, ip := range etcdIPs {
		ips = append(ips, net.ParseIP(ip))
	}
	etcdTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "etcd", Organization: []string{"k8s"}},
		NotBefore:    now,
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
		DNSNames:     []string{"localhost"},
	}
	etcdDER, err := x509.CreateCertificate(rand.Reader, etcdTmpl, caCert, &etcdKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	c := &certs{
		CA:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Etcd:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: etcdDER}),
		caCert: caCert,
		caPriv: caKey,
	}
	if c.CAKey, err = ecKeyPEM(caKey); err != nil {
		return nil, err
	}
	if c.EtcdKey, err = ecKeyPEM(etcdKey); err != nil {
		return nil, err
	}
	return c, nil
}

func ecKeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// sshKey is an ed25519 key in OpenSSH's formats.
type sshKey struct {
	Private []byte // OpenSSH PEM
	Public  string // "ssh-ed25519 AAAA..." without comment
}

func newSSHKey(comment string) (*sshKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	pubLine := string(ssh.MarshalAuthorizedKey(sp))
	return &sshKey{Private: pem.EncodeToMemory(block), Public: pubLine[:len(pubLine)-1]}, nil
}
