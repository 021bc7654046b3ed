// Package verify proves that a snapshot restores: it restores the file into
// a throwaway single-member etcd on a loopback port, asks that etcd for its
// revision and key count, compares them with what the backup recorded, and
// removes everything it made. A hash and a readable bbolt file say the
// bytes are intact; only etcd starting on them says they restore.
package verify

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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/internal/filelock"
	"github.com/ezrestore/ezrestore/internal/localetcd"
)

// Options say where etcd is and what to expect.
type Options struct {
	// BinDir holds etcd and etcdutl (etcd 3.5+) or etcdctl (3.4). kubeasz
	// keeps them in <base>/bin. Empty: $PATH, then /usr/bin.
	BinDir string
	// Want is what the restored etcd must report; zero fields are not
	// compared.
	Want Expect
	// SkipHashCheck restores a file without etcd's sha256 trailer (a copy of
	// member/snap/db rather than `snapshot save` output).
	SkipHashCheck bool
	// TempDir is where the throwaway data dir is made (default os.TempDir()).
	TempDir string
	// Timeout bounds the whole proof (default 2 minutes).
	Timeout time.Duration
	// Log receives etcd's own output (nil: kept in the temp dir and quoted
	// in errors).
	Log io.Writer
}

// Expect is what the backup recorded (the sidecar's revision and keys).
type Expect struct {
	Revision int64
	Keys     int
}

// Result is what the restored etcd reported.
type Result struct {
	Revision    int64
	Keys        int64
	EtcdVersion string
	Took        time.Duration
}

// ErrNoEtcd is returned (wrapped) when no etcd binary can be found.
var ErrNoEtcd = errors.New("no etcd binary to restore into")

// ErrMismatch is returned (wrapped) when the restored etcd disagrees with
// what the backup recorded.
var ErrMismatch = errors.New("the restored etcd does not hold what the backup recorded")

// Binaries are the programs a proof runs.
type Binaries struct {
	Etcd    string
	Restore string // etcdutl, or etcdctl for etcd 3.4
}

// FindBinaries looks for etcd and its restore tool in dir (or $PATH and
// /usr/bin when dir is "").
func FindBinaries(dir string) (Binaries, error) {
	find := func(name string) string {
		if dir != "" {
			p := filepath.Join(dir, name)
			if filelock.IsExec(p) {
				return p
			}
			return ""
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p := "/usr/bin/" + name; filelock.IsExec(p) {
			return p
		}
		return ""
	}
	where := "$PATH or /usr/bin"
	if dir != "" {
		where = dir
	}
	b := Binaries{Etcd: find("etcd")}
	if b.Etcd == "" {
		return b, fmt.Errorf("%w: none in %s (kubeasz keeps etcd in <base>/bin; give that dir with --etcd-bin)", ErrNoEtcd, where)
	}
	if b.Restore = find("etcdutl"); b.Restore == "" {
		b.Restore = find("etcdctl")
	}
	if b.Restore == "" {
		return b, fmt.Errorf("%w: %s has etcd but neither etcdutl nor etcdctl to restore with", ErrNoEtcd, where)
	}
	return b, nil
}

// Restore proves that snapshot restores (see the package comment).
func Restore(ctx context.Context, snapshot string, o Options) (*Result, error) {
	start := time.Now()
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	bins, err := FindBinaries(o.BinDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(snapshot); err != nil {
		return nil, err
	}
	version, err := etcdVersion(ctx, bins.Etcd)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(o.TempDir, "ezrestore-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o700); err != nil {
		return nil, err
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		ports, err := localetcd.Ports(2)
		if err != nil {
			return nil, err
		}
		m := member{
			name:   "ezrestore-verify",
			dir:    filepath.Join(tmp, fmt.Sprintf("member-%d", attempt)),
			client: ports[0],
			peer:   ports[1],
		}
		if err := m.restore(ctx, bins.Restore, snapshot, o.SkipHashCheck); err != nil {
			return nil, err
		}
		res, err := m.run(ctx, bins.Etcd, o.Log)
		if err == nil {
			res.EtcdVersion, res.Took = version, time.Since(start)
			return res, compare(res, o.Want, snapshot)
		}
		lastErr = err
		if !errors.Is(err, localetcd.ErrPortTaken) {
			break
		}
	}
	return nil, lastErr
}

func compare(r *Result, want Expect, snapshot string) error {
	var diffs []string
	if want.Revision > 0 && r.Revision != want.Revision {
		diffs = append(diffs, fmt.Sprintf("revision %d, recorded %d", r.Revision, want.Revision))
	}
	if want.Keys > 0 && r.Keys != int64(want.Keys) {
		diffs = append(diffs, fmt.Sprintf("%d keys, recorded %d", r.Keys, want.Keys))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s: %w: %s", snapshot, ErrMismatch, strings.Join(diffs, "; "))
	}
	return nil
}

var versionRE = regexp.MustCompile(`etcd Version: (\S+)`)

func etcdVersion(ctx context.Context, etcd string) (string, error) {
	out, err := exec.CommandContext(ctx, etcd, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", etcd, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version says %q, not an etcd version", etcd, strings.TrimSpace(string(out)))
	}
	return string(m[1]), nil
}

type member struct {
	name, dir    string
	client, peer int
}

func (m member) dataDir() string { return filepath.Join(m.dir, "data") }

func (m member) restore(ctx context.Context, tool, snapshot string, skipHash bool) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	args := []string{"snapshot", "restore", snapshot,
		"--name", m.name, "--data-dir", m.dataDir(),
		"--initial-cluster", m.name + "=" + localetcd.URL(m.peer),
		"--initial-advertise-peer-urls", localetcd.URL(m.peer),
		"--initial-cluster-token", "ezrestore-verify",
	}
	if skipHash {
		args = append(args, "--skip-hash-check")
	}
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	cmd.Dir = m.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		hint := ""
		if bytes.Contains(out, []byte("expected sha256")) {
			hint = " (the file does not match its sha256 trailer: it is damaged; verify another backup)"
		}
		return fmt.Errorf("%s: %s snapshot restore failed%s: %v: %s", snapshot, filepath.Base(tool), hint, err, lastLines(out, 3))
	}
	return nil
}

// run starts etcd on the restored data dir, reads revision and key count
// through its API and stops it.
func (m member) run(ctx context.Context, etcd string, log io.Writer) (*Result, error) {
	lf, err := os.OpenFile(filepath.Join(m.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	var w io.Writer = lf
	if log != nil {
		w = io.MultiWriter(lf, log)
	}
	e, err := localetcd.Start(ctx, localetcd.Options{Bin: etcd, Name: m.name, DataDir: m.dataDir(),
		ClientPort: m.client, PeerPort: m.peer, Log: w,
		// No metrics or debug listeners beyond the two loopback ports.
		Flags: []string{"--listen-metrics-urls", ""}})
	if err != nil {
		if errors.Is(err, localetcd.ErrPortTaken) {
			return nil, err
		}
		return nil, fmt.Errorf("the restored etcd: %w", err)
	}
	defer e.Stop()
	return countKeys(ctx, &http.Client{Timeout: 5 * time.Second}, e.ClientURL)
}

// countKeys asks etcd (its gRPC gateway, JSON over HTTP) for the number of
// keys in the whole key space and the current revision, without values.
func countKeys(ctx context.Context, hc *http.Client, client string) (*Result, error) {
	all := base64.StdEncoding.EncodeToString([]byte{0})
	body, _ := json.Marshal(map[string]any{"key": all, "range_end": all, "count_only": true})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, client+"/v3/kv/range", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("etcd range: %s: %s", resp.Status, data)
	}
	return parseRange(data)
}

func parseRange(data []byte) (*Result, error) {
	// int64 fields come as strings in the gateway's JSON.
	var r struct {
		Header struct {
			Revision json.Number `json:"revision"`
		} `json:"header"`
		Count json.Number `json:"count"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("etcd range: %w: %s", err, data)
	}
	rev, err := strconv.ParseInt(r.Header.Revision.String(), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("etcd range: revision %q: %w", r.Header.Revision, err)
	}
	var n int64
	if c := r.Count.String(); c != "" {
		if n, err = strconv.ParseInt(c, 10, 64); err != nil {
			return nil, fmt.Errorf("etcd range: count %q: %w", c, err)
		}
	}
	return &Result{Revision: rev, Keys: n}, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
