// Package etcdtest runs a real single-member etcd on 127.0.0.1 so that the
// snapshot tests and the benchmark read files etcd itself wrote, never
// hand-made imitations of its format. It runs the etcd and etcdctl found on
// the machine (scripts/deps.sh installs them) and imports no other
// ezrestore package. For tests and benchmarks only.
package etcdtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/ezrestore/ezrestore/internal/filelock"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Binaries says where etcd and etcdctl are: $EZRESTORE_ETCD / $EZRESTORE_ETCDCTL,
// else /usr/bin (Debian's etcd-server and etcd-client), else $PATH.
func Binaries() (etcd, etcdctl string, err error) {
	find := func(env, name string) (string, error) {
		if p := os.Getenv(env); p != "" {
			return p, nil
		}
		if p := "/usr/bin/" + name; filelock.IsExec(p) {
			return p, nil
		}
		return exec.LookPath(name)
	}
	if etcd, err = find("EZRESTORE_ETCD", "etcd"); err != nil {
		return "", "", fmt.Errorf("etcd binary not found (install etcd-server, or set EZRESTORE_ETCD): %w", err)
	}
	if etcdctl, err = find("EZRESTORE_ETCDCTL", "etcdctl"); err != nil {
		return "", "", fmt.Errorf("etcdctl binary not found (install etcd-client, or set EZRESTORE_ETCDCTL): %w", err)
	}
	return etcd, etcdctl, nil
}

// Options tune the server.
type Options struct {
	// QuotaBytes is --quota-backend-bytes (0: etcd's default of 2 GiB).
	QuotaBytes int64
	// SnapshotCount is --snapshot-count (0: etcd's default). A low value keeps
	// etcd's in-memory raft log small while a benchmark writes gigabytes.
	SnapshotCount int
	// Log receives etcd's output (nil: discarded).
	Log io.Writer
}

// Server is one running etcd.
type Server struct {
	Dir       string // the data dir
	ClientURL string
	etcdctl   string
	cmd       *exec.Cmd
	done      chan struct{}
	waitErr   error
	http      *http.Client
	stopOnce  sync.Once
}

// Start runs etcd with its data in dir (created 0700) on free loopback ports.
func Start(ctx context.Context, dir string, opt Options) (*Server, error) {
	etcdBin, etcdctl, err := Binaries()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		args := []string{
			"--name", "test",
			"--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "test=" + peer,
			"--initial-cluster-state", "new",
			"--max-request-bytes", strconv.Itoa(4 << 20),
		}
		if opt.QuotaBytes > 0 {
			args = append(args, "--quota-backend-bytes", strconv.FormatInt(opt.QuotaBytes, 10))
		}
		if opt.SnapshotCount > 0 {
			args = append(args, "--snapshot-count", strconv.Itoa(opt.SnapshotCount))
		}
		cmd := exec.Command(etcdBin, args...)
		out := opt.Log
		if out == nil {
			out = io.Discard
		}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", etcdBin, err)
		}
		s := &Server{Dir: dir, ClientURL: client, etcdctl: etcdctl, cmd: cmd, done: make(chan struct{}),
			http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
		go func() { s.waitErr = cmd.Wait(); close(s.done) }()
		if lastErr = s.waitHealthy(ctx, 30*time.Second); lastErr == nil {
			return s, nil
		}
		s.Stop()
	}
	return nil, lastErr
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (s *Server) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("etcd exited before it was healthy: %v", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := s.http.Get(s.ClientURL + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"true"`) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd at %s not healthy after %s", s.ClientURL, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// call posts a JSON request to etcd's gRPC gateway and decodes the answer.
func (s *Server) call(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, s.ClientURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	res, err := s.http.Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %s", path, res.Status, strings.TrimSpace(string(data)))
	}
	if resp == nil {
		return nil
	}
	return json.Unmarshal(data, resp)
}

type header struct {
	Header struct {
		Revision string `json:"revision"`
	} `json:"header"`
}

func (h header) rev() int64 { n, _ := strconv.ParseInt(h.Header.Revision, 10, 64); return n }

func b64(s []byte) string { return base64.StdEncoding.EncodeToString(s) }

// Put writes key=value and returns the new revision.
func (s *Server) Put(ctx context.Context, key string, value []byte) (int64, error) {
	var h header
	err := s.call(ctx, "/v3/kv/put", map[string]string{"key": b64([]byte(key)), "value": b64(value)}, &h)
	return h.rev(), err
}

// Delete removes key and returns the new revision.
func (s *Server) Delete(ctx context.Context, key string) (int64, error) {
	var h header
	err := s.call(ctx, "/v3/kv/deleterange", map[string]string{"key": b64([]byte(key))}, &h)
	return h.rev(), err
}

// Compact compacts the history up to rev and waits until it is applied to the backend.
func (s *Server) Compact(ctx context.Context, rev int64) error {
	return s.call(ctx, "/v3/kv/compaction", map[string]any{"revision": strconv.FormatInt(rev, 10), "physical": true}, nil)
}

// DBSize is the size of the member's bbolt database as etcd reports it.
func (s *Server) DBSize(ctx context.Context) (int64, error) {
	var st struct {
		DBSize string `json:"dbSize"`
	}
	if err := s.call(ctx, "/v3/maintenance/status", map[string]string{}, &st); err != nil {
		return 0, err
	}
	return strconv.ParseInt(st.DBSize, 10, 64)
}

// SnapshotSave runs `etcdctl snapshot save` into path: the file an operator's
// backup holds, with its sha256 trailer.
func (s *Server) SnapshotSave(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, s.etcdctl, "--endpoints", s.ClientURL, "snapshot", "save", path)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("etcdctl snapshot save: %v: %s", err, out)
	}
	return os.Chmod(path, 0o600)
}

// BackendPath is the live bbolt file of the member, member/snap/db.
func (s *Server) BackendPath() string { return filepath.Join(s.Dir, "data", "member", "snap", "db") }

// Stop ends etcd (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// CopyFile copies src to dst with mode 0600 (used for member/snap/db after Stop).
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
