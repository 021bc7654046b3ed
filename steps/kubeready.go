package steps

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

	"gopkg.in/yaml.v3"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
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
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(k.caPEM) {
		return nil, fmt.Errorf("%s: the certificate authority holds no PEM certificate", k.Kubeconfig)
	}
	cert, err := tls.X509KeyPair(k.certPEM, k.keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: client certificate: %w", k.Kubeconfig, err)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
	}, nil
}

func apiGet(ctx context.Context, c *http.Client, url string) (int, []byte, error) {
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

// APISkipped says why the restore does not check the API, or "".
func (r *Restore) APISkipped() string {
	switch {
	case r.NoAPICheck:
		return "--no-api-check given"
	case r.Kube == nil && r.KubeMissing != "":
		return r.KubeMissing
	case r.Kube == nil:
		return "no kubeconfig to reach the apiservers"
	}
	return ""
}

// KubeReady waits until every master's kube-apiserver answers /readyz "ok",
// over TLS verified against the cluster CA, as the kubeconfig's user. A
// kube-apiserver unit that failed or keeps restarting stops the wait at once;
// either way the failure names the host and shows its last log lines.
type KubeReady struct{ r *Restore }

const opKubeReady = "kube-ready"

// ReadyPoll is the pause between two /readyz rounds.
const ReadyPoll = 500 * time.Millisecond

const apiserverUnit = "kube-apiserver.service"

func (k *KubeReady) timeout() time.Duration { return healthTimeout(k.r.HealthTimeout) }

func (k *KubeReady) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	k.r.Masters = APIServers(hosts)
	sp := &orchestrator.StepPlan{ReadOnly: true, Parallel: true}
	if why := k.r.APISkipped(); why != "" {
		sp.Notes = append(sp.Notes, "skipped: "+why)
		return sp, nil
	}
	sp.Notes = append(sp.Notes, fmt.Sprintf("TLS verified against the CA of %s, as its user %s", k.r.Kube.Kubeconfig, k.r.Kube.User))
	for _, m := range k.r.Masters {
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: m.Host, Ops: []*orchestrator.Op{{
			Kind: opKubeReady,
			Desc: fmt.Sprintf("GET %s/readyz every %v up to %v until it answers ok; stop early if %s fails", m.URL, ReadyPoll, k.timeout(), apiserverUnit),
			Args: map[string]string{"url": m.URL},
		}}})
	}
	return sp, nil
}

func (k *KubeReady) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, conn transport.Conn) (orchestrator.OpResult, error) {
	c, err := k.r.Kube.Client()
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	t0 := time.Now()
	deadline := t0.Add(k.timeout())
	url := op.Args["url"] + "/readyz"
	hosts := []string{t.Host}
	baseline := readUnits(ctx, env, hosts, apiserverUnit)
	nextUnitCheck := t0.Add(time.Second)
	last := ""
	for {
		code, body, err := apiGet(ctx, c, url)
		if err == nil && code == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
			return orchestrator.OpResult{Duration: time.Since(t0), Message: fmt.Sprintf("%s: ok after %.2fs", url, time.Since(t0).Seconds())}, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("HTTP %d: %s", code, k.failedChecks(ctx, c, op.Args["url"], body))
		}
		if time.Now().After(nextUnitCheck) {
			nextUnitCheck = time.Now().Add(time.Second)
			if stuck := hopeless(apiserverUnit, baseline, readUnits(ctx, env, hosts, apiserverUnit)); stuck[t.Host] != "" {
				return orchestrator.OpResult{Duration: time.Since(t0)},
					apiserverFailure(ctx, conn, fmt.Sprintf("kube-apiserver cannot start on %s: %s; waiting longer would not help", t.Host, stuck[t.Host]))
			}
		}
		if time.Now().After(deadline) {
			return orchestrator.OpResult{Duration: time.Since(t0)},
				apiserverFailure(ctx, conn, fmt.Sprintf("kube-apiserver on %s is not ready after %v: %s: %s", t.Host, k.timeout(), url, last))
		}
		select {
		case <-ctx.Done():
			return orchestrator.OpResult{Duration: time.Since(t0)}, fmt.Errorf("interrupted while waiting for %s: %s", url, last)
		case <-time.After(ReadyPoll):
		}
	}
}

// failedChecks names the failing /readyz checks (from ?verbose), or the body.
func (k *KubeReady) failedChecks(ctx context.Context, c *http.Client, base string, body []byte) string {
	if _, vbody, err := apiGet(ctx, c, base+"/readyz?verbose"); err == nil {
		var failed []string
		for _, l := range strings.Split(string(vbody), "\n") {
			if strings.HasPrefix(l, "[-]") {
				failed = append(failed, strings.TrimSpace(l))
			}
		}
		if len(failed) > 0 {
			return strings.Join(failed, "; ")
		}
	}
	return firstLine(body)
}

// apiserverFailure adds the host's last kube-apiserver log lines to why.
func apiserverFailure(ctx context.Context, conn transport.Conn, why string) error {
	var b strings.Builder
	b.WriteString(why)
	if conn != nil {
		r, err := conn.Run(context.WithoutCancel(ctx), "journalctl -u "+transport.Quote(apiserverUnit)+" -n 10 --no-pager -o cat 2>&1")
		if err == nil {
			fmt.Fprintf(&b, "\n  last kube-apiserver log lines (journalctl -u kube-apiserver -n 10):\n    %s",
				strings.ReplaceAll(strings.TrimSpace(string(r.Stdout)), "\n", "\n    "))
		}
	}
	return errors.New(b.String())
}
