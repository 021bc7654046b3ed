// Package backup takes etcd backups of a kubeasz cluster over SSH and files
// them the way kubeasz's `ezctl backup` does, each one verified.
//
// One backup: find a healthy etcd member (the etcd hosts in inventory order;
// an unreachable or unhealthy one is skipped and reported), run
// `etcdctl snapshot save` on that host into a private temporary dir with the
// inventory's TLS files, download the file, check that the download equals the
// host's file, that etcd's sha256 trailer matches and that the file opens as an
// etcd database with a revision, then file it as
// <cluster dir>/backup/snapshot_<YYYYmmddHHMM>.db (0600) with a metadata
// sidecar, refresh snapshot.db, and remove the host's temporary dir.
package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/snapshot"
)

// kubeasz's defaults for the variables that locate etcdctl and its certificates.
const (
	DefaultCADir  = "/etc/kubernetes/ssl"
	DefaultBinDir = "/opt/kube/bin"
)

// cleanupTimeout bounds removing the host's temporary dir, which happens even
// when the backup was cancelled.
const cleanupTimeout = 30 * time.Second

// Options say what to back up and how.
type Options struct {
	Cluster inventory.ClusterDir
	// Keep prunes the oldest backups beyond the newest Keep (0: keep all).
	Keep int
	// Dial authenticates hosts; zero value: the cluster dir's ssh/known_hosts and ssh/id_ed25519.
	Dial *orchestrator.DialOptions
	// Progress, when set, is called once the snapshot's size is known and
	// returns the callback Download reports bytes to, and a function to call
	// when the download ends.
	Progress func(title string, size int64) (update func(int64), done func())
	// Log receives one line per event (a skipped host, the chosen member); nil: silent.
	Log func(format string, args ...any)
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// HostError is a member that could not give a backup, and why.
type HostError struct {
	Member string
	Host   string
	Err    error
}

func (e HostError) Error() string { return fmt.Sprintf("%s (%s): %v", e.Host, e.Member, e.Err) }

// Result is one finished backup.
type Result struct {
	Path    string
	Sidecar snapshot.Sidecar
	Info    *snapshot.Info
	// Skipped are the members tried before the one that gave the backup.
	Skipped []HostError
	// Pruned are the backups removed by Keep.
	Pruned []string
}

// ErrNoHealthyMember is wrapped by the error of a backup that no member could give.
var ErrNoHealthyMember = errors.New("no reachable healthy etcd member")

// Take makes one backup. When no member gives a verified snapshot the error
// lists each member's reason, and nothing is written locally.
func Take(ctx context.Context, opts Options) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	if opts.Keep < 0 {
		return nil, fmt.Errorf("--keep must not be negative, got %d", opts.Keep)
	}
	inv, err := inventory.LoadCluster(opts.Cluster)
	if err != nil {
		return nil, err
	}
	members, err := inv.EtcdMembers()
	if err != nil {
		return nil, err
	}
	dial := orchestrator.DialOptions{
		KnownHostsFiles: []string{opts.Cluster.KnownHosts()},
		IdentityFiles:   []string{opts.Cluster.PrivateKey()},
		ConnectTimeout:  10 * time.Second,
	}
	if opts.Dial != nil {
		dial = *opts.Dial
	}
	var skipped []HostError
	for i, m := range members {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := fromMember(ctx, opts, dial, m)
		if err == nil {
			res.Skipped = skipped
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		he := HostError{Member: m.Name, Host: m.Host.Name, Err: err}
		if i < len(members)-1 {
			opts.Log("skipped %s; trying the next member", he)
		}
		skipped = append(skipped, he)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s: %v; tried:", opts.Cluster.Name, ErrNoHealthyMember)
	for _, s := range skipped {
		fmt.Fprintf(&b, "\n  %s", s)
	}
	return nil, &noMemberError{msg: b.String(), Skipped: skipped}
}

type noMemberError struct {
	msg     string
	Skipped []HostError
}

func (e *noMemberError) Error() string { return e.msg }
func (e *noMemberError) Unwrap() error { return ErrNoHealthyMember }

// hostVar is an inventory path variable of h, or def when unset. A value
// still holding an unresolved {{ }} is an error: guessing a path is worse.
func hostVar(h *inventory.Host, name, def string) (string, error) {
	v, ok := h.Var(name)
	if !ok || v == "" {
		return def, nil
	}
	if strings.Contains(v, "{{") {
		return "", fmt.Errorf("variable %s of host %s is %q, which refers to an undefined variable", name, h.Name, v)
	}
	return v, nil
}

// etcdctl builds the remote command line running the host's etcdctl (bin_dir's,
// else the one on PATH) against endpoint with the TLS files in caDir.
func etcdctl(binDir, caDir, endpoint string, args ...string) string {
	bin := strings.TrimRight(binDir, "/") + "/etcdctl"
	ca := strings.TrimRight(caDir, "/")
	words := []string{
		"--endpoints=" + endpoint,
		"--cacert=" + ca + "/ca.pem",
		"--cert=" + ca + "/etcd.pem",
		"--key=" + ca + "/etcd-key.pem",
	}
	words = append(words, args...)
	return "E=etcdctl; if [ -x " + orchestrator.Quote(bin) + " ]; then E=" + orchestrator.Quote(bin) + "; fi; " +
		`ETCDCTL_API=3 "$E" ` + orchestrator.QuoteAll(words...)
}

// run runs cmd and turns a non-zero exit into an error with its stderr.
func run(ctx context.Context, c orchestrator.Conn, what, cmd string) ([]byte, error) {
	res, err := c.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if res.ExitCode != 0 {
		msg := errorLines(res.Stderr)
		if msg == "" {
			msg = errorLines(res.Stdout)
		}
		return nil, fmt.Errorf("%s: exit %d: %s", what, res.ExitCode, msg)
	}
	return res.Stdout, nil
}

// errorLines condenses a failed command's output to one line: etcdctl's JSON
// log lines are dropped, the rest joined, and the whole capped.
func errorLines(out []byte) string {
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "{") {
			keep = append(keep, l)
		}
	}
	msg := strings.Join(keep, "; ")
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return msg
}

// fromMember takes, downloads and files a backup from member m.
func fromMember(ctx context.Context, opts Options, dial orchestrator.DialOptions, m inventory.EtcdMember) (*Result, error) {
	caDir, err := hostVar(m.Host, "ca_dir", DefaultCADir)
	if err != nil {
		return nil, err
	}
	binDir, err := hostVar(m.Host, "bin_dir", DefaultBinDir)
	if err != nil {
		return nil, err
	}
	conn, err := orchestrator.Dial(ctx, m.Host, dial)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer conn.Close()

	// A member that cannot serve a quorum read is not one to back up from.
	if _, err := run(ctx, conn, "etcd health", etcdctl(binDir, caDir, m.ClientURL, "endpoint", "health")); err != nil {
		return nil, err
	}
	version := ""
	if out, err := run(ctx, conn, "etcd status", etcdctl(binDir, caDir, m.ClientURL, "endpoint", "status", "-w", "json")); err == nil {
		version = parseVersion(out)
	}

	out, err := run(ctx, conn, "make a private temporary dir", "umask 077 && mktemp -d /tmp/ezrestore-backup.XXXXXXXX")
	if err != nil {
		return nil, err
	}
	tmpDir := strings.TrimSpace(string(out))
	if !strings.HasPrefix(tmpDir, "/tmp/ezrestore-backup.") || strings.ContainsAny(tmpDir, "\n ") {
		return nil, fmt.Errorf("mktemp printed %q", tmpDir)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, err := run(cctx, conn, "remove "+tmpDir, "rm -rf -- "+orchestrator.Quote(tmpDir)); err != nil {
			opts.Log("warning: %s: %v", m.Host.Name, err)
		}
	}()
	remote := tmpDir + "/snapshot.db"
	taken := opts.Now()
	opts.Log("taking a snapshot on %s (%s)", m.Host.Name, m.Name)
	if _, err := run(ctx, conn, "etcdctl snapshot save", etcdctl(binDir, caDir, m.ClientURL, "snapshot", "save", remote)); err != nil {
		return nil, err
	}
	out, err = run(ctx, conn, "size of the snapshot", "stat -c %s -- "+orchestrator.Quote(remote))
	if err != nil {
		return nil, err
	}
	size, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("size of the snapshot: %q", out)
	}
	remoteSum, err := orchestrator.RemoteSha256(ctx, conn, remote)
	if err != nil {
		return nil, err
	}

	backupDir := opts.Cluster.BackupDir()
	if err := os.MkdirAll(backupDir, 0o700); err != nil {
		return nil, err
	}
	local := filepath.Join(backupDir, fmt.Sprintf(".download-%d-%d.db", os.Getpid(), time.Now().UnixNano()))
	defer os.Remove(local)
	defer os.Remove(local + ".part")
	update, done := func(int64) {}, func() {}
	if opts.Progress != nil {
		update, done = opts.Progress(fmt.Sprintf("download snapshot from %s", m.Host.Name), size)
	}
	err = conn.Download(ctx, remote, local, update)
	done()
	if err != nil {
		return nil, err
	}

	info, err := verify(local, remoteSum)
	if err != nil {
		return nil, err
	}
	path, err := snapshot.AddBackup(backupDir, local, taken)
	if err != nil {
		return nil, err
	}
	info.Path = path
	side := snapshot.Sidecar{
		SourceHost:  m.Host.Name,
		EtcdVersion: version,
		Revision:    info.Revision,
		Keys:        info.Keys,
		SHA256:      info.SHA256,
		Size:        info.Size,
		Time:        taken.UTC().Truncate(time.Second),
		Cluster:     opts.Cluster.Name,
	}
	if err := snapshot.WriteSidecar(path, &side); err != nil {
		return nil, fmt.Errorf("backup %s is filed but its sidecar is not: %w", path, err)
	}
	if err := snapshot.RefreshLatest(backupDir, path, &side); err != nil {
		return nil, fmt.Errorf("backup %s is filed but %s was not refreshed: %w", path, snapshot.LatestName, err)
	}
	res := &Result{Path: path, Sidecar: side, Info: info}
	if opts.Keep > 0 {
		res.Pruned, err = snapshot.Prune(backupDir, opts.Keep)
		if err != nil {
			return res, fmt.Errorf("backup %s is filed, but pruning failed: %w", path, err)
		}
	}
	return res, nil
}

// verify checks a downloaded snapshot: the same bytes as on the host, etcd's
// sha256 trailer present and matching, and an etcd database with a revision.
func verify(local, remoteSum string) (*snapshot.Info, error) {
	info, err := snapshot.Inspect(local)
	if err != nil {
		return nil, fmt.Errorf("downloaded snapshot: %w", err)
	}
	switch {
	case info.SHA256 != remoteSum:
		return nil, fmt.Errorf("downloaded snapshot differs from the host's copy (sha256 %s, host %s)", info.SHA256, remoteSum)
	case info.HashVerified == nil:
		return nil, errors.New("downloaded snapshot has no sha256 trailer: etcdctl did not write it")
	case !*info.HashVerified:
		return nil, errors.New("snapshot's sha256 trailer does not match its content")
	case info.Revision <= 0:
		return nil, errors.New("snapshot has no revision")
	}
	return info, nil
}

// parseVersion reads the server version from `etcdctl endpoint status -w json`.
func parseVersion(out []byte) string {
	var st []struct {
		Status struct {
			Version string `json:"version"`
		} `json:"Status"`
	}
	if json.Unmarshal(out, &st) != nil || len(st) == 0 {
		return ""
	}
	return st[0].Status.Version
}
