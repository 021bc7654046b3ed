package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/kubeapi"
)

// KubeconfigPath is kubeasz's admin kubeconfig of the lab,
// <cluster dir>/kubectl.kubeconfig (written with KubeReal only). It points
// at the first master's apiserver.
func (l *Lab) KubeconfigPath() string { return filepath.Join(l.Dir.Path, "kubectl.kubeconfig") }

// KubectlPath is <base>/bin/kubectl, where kubeasz keeps kubectl: a link to
// the cached build.
func (l *Lab) KubectlPath() string { return filepath.Join(l.Opts.Base, "bin", "kubectl") }

func (l *Lab) adminCertPaths() (cert, key string) {
	return filepath.Join(l.Dir.SSLDir(), "admin.pem"), filepath.Join(l.Dir.SSLDir(), "admin-key.pem")
}

// Kubectl runs <base>/bin/kubectl with the lab's kubectl.kubeconfig and
// returns its standard output; a failure carries its standard error.
func (l *Lab) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	if !l.realKube() {
		return nil, fmt.Errorf("lab %s runs stand-ins for the control plane; bring it up with --kube real to use kubectl", l.Opts.Name)
	}
	cmd := exec.CommandContext(ctx, l.KubectlPath(), append([]string{"--kubeconfig=" + l.KubeconfigPath()}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// apiClient is an HTTPS client that trusts only the lab's CA and logs in
// with the admin certificate of the cluster dir.
func (l *Lab) apiClient() (*http.Client, error) {
	caPEM, err := os.ReadFile(filepath.Join(l.Dir.SSLDir(), "ca.pem"))
	if err != nil {
		return nil, err
	}
	certFile, keyFile := l.adminCertPaths()
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("the lab's admin certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("the lab's admin key: %w", err)
	}
	c, err := kubeapi.NewHTTPClient(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the lab's CA and admin certificate: %w", err)
	}
	return c, nil
}

// apiGet GETs path from the apiserver on master addr.
func (l *Lab) apiGet(ctx context.Context, c *http.Client, addr, path string) (int, []byte, error) {
	return kubeapi.Get(ctx, c, apiURL(addr)+path)
}

// Readyz asks the apiserver on master addr (address or machine name) for
// /readyz over TLS verified against the lab's CA, as the admin: nil when it
// answers 200 "ok", otherwise an error with what it said (the failing
// checks, from /readyz?verbose).
func (l *Lab) Readyz(ctx context.Context, addr string) error {
	h, err := l.Host(addr)
	if err != nil {
		return err
	}
	if !l.realKube() || !h.In("kube_master") {
		return fmt.Errorf("%s %s runs no real kube-apiserver", h.Address, h.Machine)
	}
	c, err := l.apiClient()
	if err != nil {
		return err
	}
	code, body, err := l.apiGet(ctx, c, h.Address, "/readyz")
	if err != nil {
		return fmt.Errorf("%s: kube-apiserver /readyz: %w", h.Address, err)
	}
	if code == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
		return nil
	}
	if _, vbody, err := l.apiGet(ctx, c, h.Address, "/readyz?verbose"); err == nil {
		var failed []string
		for _, line := range strings.Split(string(vbody), "\n") {
			if strings.HasPrefix(line, "[-]") {
				failed = append(failed, strings.TrimSpace(line))
			}
		}
		if len(failed) > 0 {
			body = []byte(strings.Join(failed, "; "))
		}
	}
	return fmt.Errorf("%s: kube-apiserver /readyz answered %d: %s", h.Address, code, strings.TrimSpace(string(body)))
}

// kubePorts are the ports the real control plane opens on a master's address.
func kubePorts() []string {
	return []string{strconv.Itoa(KubeSecurePort), strconv.Itoa(controllerManagerPort), strconv.Itoa(schedulerPort)}
}

// waitAPI waits until every master's apiserver is ready and the `default`
// service account exists (the controller-manager makes it; pods cannot be
// created before), so that kubectl works when Up returns. A master that
// does not become ready is named with its last kube-apiserver log lines.
func (l *Lab) waitAPI(ctx context.Context) error {
	masters := l.Masters()
	errs := make([]error, len(masters))
	var wg sync.WaitGroup
	for i, h := range masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last error
			for {
				if last = l.Readyz(ctx, h.Address); last == nil {
					l.logf("%s %s: kube-apiserver ready", h.Address, h.Machine)
					return
				}
				select {
				case <-ctx.Done():
					logs, _ := l.Exec(context.Background(), h.Address, "journalctl -u kube-apiserver -n 15 --no-pager -o cat")
					errs[i] = fmt.Errorf("%s %s: kube-apiserver not ready in time: %v\nlast kube-apiserver log lines:\n%s", h.Address, h.Machine, last, logs)
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c, err := l.apiClient()
	if err != nil {
		return err
	}
	for {
		code, body, err := l.apiGet(ctx, c, masters[0].Address, "/api/v1/namespaces/default/serviceaccounts/default")
		if err == nil && code == http.StatusOK {
			l.logf("%s: Kubernetes v%s control plane ready (kubectl: %s --kubeconfig=%s)", l.Opts.Name, KubeVersion, l.KubectlPath(), l.KubeconfigPath())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no `default` service account in time (kube-controller-manager makes it): %d %s %v", masters[0].Address, code, bytes.TrimSpace(body), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// installKubectl links <base>/bin/kubectl to the cached build, as kubeasz
// keeps kubectl in <base>/bin. A kubectl there that the lab did not put
// there is left alone (the lab's Kubectl then uses it).
func (l *Lab) installKubectl() error {
	link := l.KubectlPath()
	want := filepath.Join(l.KubeBin, "kubectl")
	if target, err := os.Readlink(link); err == nil {
		if target == want {
			return nil
		}
		if !strings.HasPrefix(target, CacheDir+"/kube-") {
			l.logf("%s: leaving %s (-> %s) as it is", l.Opts.Name, link, target)
			return nil
		}
	} else if _, err := os.Lstat(link); err == nil {
		l.logf("%s: leaving %s as it is (not the lab's)", l.Opts.Name, link)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	_ = os.Remove(link)
	return os.Symlink(want, link)
}

// removeKubectl removes <base>/bin/kubectl if it is the lab's link and no
// other lab of this base still has a kubectl.kubeconfig.
func (l *Lab) removeKubectl() {
	link := l.KubectlPath()
	target, err := os.Readlink(link)
	if err != nil || !strings.HasPrefix(target, CacheDir+"/kube-") {
		return
	}
	others, _ := filepath.Glob(filepath.Join(l.Opts.Base, "clusters", "*", "kubectl.kubeconfig"))
	for _, o := range others {
		if o != l.KubeconfigPath() {
			return
		}
	}
	_ = os.Remove(link)
	_ = os.Remove(filepath.Dir(link)) // only when empty
}

// Memory is what the lab's processes use, summed over every process in the
// hosts' cgroups: PSS (each shared page counted once, split among its
// users; the figure to compare with the machine's memory) and RSS (shared
// pages counted in every process that maps them).
type Memory struct {
	PSS, RSS  int64 // bytes
	Processes int
	// ByUnit is the PSS of the processes whose command is one of the lab's
	// units (etcd, kube-apiserver, ...), summed over the hosts.
	ByUnit map[string]int64
}

// Memory measures the lab's memory now (see Memory).
func (l *Lab) Memory() Memory {
	m := Memory{ByUnit: map[string]int64{}}
	seen := map[int]bool{}
	for _, h := range l.Hosts {
		for _, pid := range l.cgroupPIDs(h) {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			pss, rss, ok := processMemory(pid)
			if !ok {
				continue
			}
			m.PSS += pss
			m.RSS += rss
			m.Processes++
			if comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm")); err == nil {
				name := strings.TrimSpace(string(comm))
				for _, u := range h.Units() {
					// comm is cut to 15 bytes: kube-controller-manager reads kube-controller.
					if u == name || len(u) > 15 && u[:15] == name {
						m.ByUnit[u] += pss
					}
				}
			}
		}
	}
	return m
}

// processMemory reads a process's Pss and Rss (bytes) from smaps_rollup.
func processMemory(pid int) (pss, rss int64, ok bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Pss:":
			pss = n << 10
		case "Rss:":
			rss = n << 10
		}
	}
	return pss, rss, true
}

func (m Memory) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "PSS %d MiB (RSS %d MiB) over %d processes", m.PSS>>20, m.RSS>>20, m.Processes)
	units := make([]string, 0, len(m.ByUnit))
	for u := range m.ByUnit {
		units = append(units, u)
	}
	sort.Strings(units)
	for _, u := range units {
		fmt.Fprintf(&b, "; %s %d MiB", u, m.ByUnit[u]>>20)
	}
	return b.String()
}
