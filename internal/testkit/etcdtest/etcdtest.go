// Package etcdtest runs a real single-member etcd on 127.0.0.1 so that the
// snapshot tests and the benchmark read files etcd itself wrote, never
// hand-made imitations of its format. It runs the etcd and etcdctl found on
// the machine (scripts/deps.sh installs them), started by internal/localetcd
// as the restore proof starts its own. For tests and benchmarks only.
package etcdtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/internal/filelock"
	"github.com/ezrestore/ezrestore/internal/localetcd"
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
	etcd      *localetcd.Etcd
	http      *http.Client
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
	flags := []string{"--initial-cluster-state", "new", "--max-request-bytes", strconv.Itoa(4 << 20)}
	if opt.QuotaBytes > 0 {
		flags = append(flags, "--quota-backend-bytes", strconv.FormatInt(opt.QuotaBytes, 10))
	}
	if opt.SnapshotCount > 0 {
		flags = append(flags, "--snapshot-count", strconv.Itoa(opt.SnapshotCount))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		ports, err := localetcd.Ports(2)
		if err != nil {
			return nil, err
		}
		e, err := localetcd.Start(ctx, localetcd.Options{Bin: etcdBin, Name: "test", DataDir: filepath.Join(dir, "data"),
			ClientPort: ports[0], PeerPort: ports[1], Flags: flags, Log: opt.Log})
		if err == nil {
			return &Server{Dir: dir, ClientURL: e.ClientURL, etcdctl: etcdctl, etcd: e,
				http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}, nil
		}
		if lastErr = err; !errors.Is(err, localetcd.ErrPortTaken) {
			break
		}
	}
	return nil, lastErr
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
func (s *Server) Stop() { s.etcd.Stop() }

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
