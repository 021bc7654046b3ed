// Package kubeapi is how the bastion reads the Kubernetes API: the
// credentials of a kubeconfig (kubeasz's kubectl.kubeconfig), the one HTTPS
// client and the one GET, and where the inventory puts the apiservers.
package kubeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"gopkg.in/yaml.v3"
)

// KubeconfigName is kubeasz's admin kubeconfig in the cluster dir.
const KubeconfigName = "kubectl.kubeconfig"

// DefaultSecurePort is kube-apiserver's port when the inventory sets no SECURE_PORT.
const DefaultSecurePort = "6443"

// KubeAPI is how the bastion talks to the apiservers: the CA that signs
// their certificates and the client credentials, from a kubeconfig.
type KubeAPI struct {
	// Kubeconfig is the file read.
	Kubeconfig string `json:"kubeconfig"`
	User       string `json:"user,omitempty"`
	caPEM      []byte
	certPEM    []byte
	keyPEM     []byte
}

// kubeconfigFile is the part of a kubeconfig read here.
type kubeconfigFile struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			CAData string `yaml:"certificate-authority-data"`
			CA     string `yaml:"certificate-authority"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			CertData string `yaml:"client-certificate-data"`
			Cert     string `yaml:"client-certificate"`
			KeyData  string `yaml:"client-key-data"`
			Key      string `yaml:"client-key"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// LoadKubeconfig reads the current context's CA and client certificate
// from a kubeconfig (inline *-data or file paths, relative to the file).
func LoadKubeconfig(path string) (*KubeAPI, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kc kubeconfigFile
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return nil, fmt.Errorf("%s: not a kubeconfig: %w", path, err)
	}
	clusterName, userName := "", ""
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext || kc.CurrentContext == "" {
			clusterName, userName = c.Context.Cluster, c.Context.User
			break
		}
	}
	if clusterName == "" && len(kc.Clusters) > 0 {
		clusterName = kc.Clusters[0].Name
	}
	if userName == "" && len(kc.Users) > 0 {
		userName = kc.Users[0].Name
	}
	k := &KubeAPI{Kubeconfig: path, User: userName}
	dir := filepath.Dir(path)
	for _, c := range kc.Clusters {
		if c.Name == clusterName {
			if k.caPEM, err = dataOrFile(c.Cluster.CAData, c.Cluster.CA, dir); err != nil {
				return nil, fmt.Errorf("%s: cluster %s certificate-authority: %w", path, c.Name, err)
			}
		}
	}
	for _, u := range kc.Users {
		if u.Name == userName {
			if k.certPEM, err = dataOrFile(u.User.CertData, u.User.Cert, dir); err != nil {
				return nil, fmt.Errorf("%s: user %s client-certificate: %w", path, u.Name, err)
			}
			if k.keyPEM, err = dataOrFile(u.User.KeyData, u.User.Key, dir); err != nil {
				return nil, fmt.Errorf("%s: user %s client-key: %w", path, u.Name, err)
			}
		}
	}
	switch {
	case k.caPEM == nil:
		return nil, fmt.Errorf("%s: no certificate-authority for cluster %q: the apiservers' certificates cannot be verified", path, clusterName)
	case k.certPEM == nil || k.keyPEM == nil:
		return nil, fmt.Errorf("%s: user %q has no client certificate and key (only certificate users are supported)", path, userName)
	}
	if _, err := k.Client(); err != nil {
		return nil, err
	}
	return k, nil
}

func dataOrFile(data, file, dir string) ([]byte, error) {
	if data != "" {
		return base64.StdEncoding.DecodeString(strings.TrimSpace(data))
	}
	if file == "" {
		return nil, nil
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	return os.ReadFile(file)
}

// Client is an HTTPS client that trusts only the kubeconfig's CA and
// presents its client certificate.
func (k *KubeAPI) Client() (*http.Client, error) {
	if k == nil {
		return nil, errors.New("no kubeconfig to reach the apiservers")
	}
	c, err := NewHTTPClient(k.caPEM, k.certPEM, k.keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.Kubeconfig, err)
	}
	return c, nil
}

// NewHTTPClient is an HTTPS client that trusts only caPEM and presents the
// client certificate certPEM/keyPEM: the one client every API read uses.
func NewHTTPClient(caPEM, certPEM, keyPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the certificate authority holds no PEM certificate")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
	}, nil
}

// Get GETs url with c and returns the status code and the body (at most
// 1 MiB): the one way ezrestore reads the Kubernetes API.
func Get(ctx context.Context, c *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// APIServer is one master's kube-apiserver as the inventory places it.
type APIServer struct {
	Host string `json:"host"`
	URL  string `json:"url"`
}

// APIServers are the masters' apiserver URLs: the host's address and
// SECURE_PORT (kubeasz's variable), else 6443.
func APIServers(hosts []*inventory.Host) []APIServer {
	var out []APIServer
	for _, h := range hosts {
		port := h.Vars["SECURE_PORT"]
		if port == "" {
			port = DefaultSecurePort
		}
		out = append(out, APIServer{Host: h.Name, URL: "https://" + net.JoinHostPort(h.Address, port)})
	}
	return out
}
