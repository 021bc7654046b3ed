// Package backup takes etcd backups of a kubeasz cluster over SSH and files
// them the way kubeasz's `ezctl backup` does, each one verified.
//
// One backup: find a healthy etcd member (the etcd hosts in inventory order;
// an unreachable or unhealthy one is skipped and reported), run
// `etcdctl snapshot save` on that host into a private temporary dir, reaching
// etcd as the member's own unit does (its client URL and TLS files), download the file, check that the download equals the
// host's file, that etcd's sha256 trailer matches and that the file opens as an
// etcd database with a revision, then file it as
// <cluster dir>/backup/snapshot_<YYYYmmddHHMM>.db (0600) with a metadata
// sidecar, refresh snapshot.db, and remove the host's temporary dir.
package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/kit"
	"github.com/ezrestore/ezrestore/runlock"
	"github.com/ezrestore/ezrestore/snapshot"
	"github.com/ezrestore/ezrestore/transport"
)

// cleanupTimeout bounds removing the host's temporary dir, which happens even
// when the backup was cancelled.
const cleanupTimeout = 30 * time.Second

// Options say what to back up and how.
type Options struct {
	// Target names the cluster and how to reach its hosts, as for a restore.
	Target cluster.Selector
	// Forks bounds how many etcd hosts are connected to at once.
	Forks int
	// Keep prunes the oldest backups beyond the newest Keep (0: keep all).
	Keep int
	// Progress, when set, is called once the snapshot's size is known and
	// returns the callback Download reports bytes to, and a function to call
	// when the download ends.
	Progress func(title string, size int64) (update func(int64), done func())
	// Log receives one line per event (a skipped host, the chosen member); nil: silent.
	Log func(format string, args ...any)
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	// BreakLock takes over a stale run lock of the cluster (--break-lock).
	BreakLock bool
	// Retention prunes the local backups (and the offsite ones with
	// Offsite) by tiers after a backup; Keep N is Retention.Last N.
	Retention snapshot.Retention
	// Offsite, when set, receives a copy of every backup (OpenOffsite).
	Offsite *Offsite
	// VerifyRestore proves each backup restores into a throwaway etcd
	// before it is copied offsite; EtcdBin is where etcd is ("" :
	// <base>/bin, then $PATH).
	VerifyRestore bool
	EtcdBin       string
	// IncludeSSHKey packs the cluster dir's SSH private keys into the
	// rebuild kit that goes offsite with each copy (never by default).
	IncludeSSHKey bool
}

// SkippedMember is a member that could not give a backup, and why.
type SkippedMember struct {
	Member string
	Host   string
	Err    error
}

func (e SkippedMember) Error() string { return fmt.Sprintf("%s (%s): %v", e.Host, e.Member, e.Err) }

// Result is one finished backup.
type Result struct {
	Path    string
	Sidecar snapshot.Sidecar
	Info    *snapshot.Info
	// Skipped are the members tried before the one that gave the backup.
	Skipped []SkippedMember
	// Pruned are the backups removed by Keep or Retention.
	Pruned []string
	// Verified is what the throwaway etcd reported (VerifyRestore).
	Verified *VerifiedRestore
	// Offsite is the offsite copy (with Offsite).
	Offsite *Uploaded
	// Retention is what the policy decided, locally and offsite.
	Retention []*Pruning
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
	if err := prepareFinish(&opts); err != nil {
		return nil, err
	}
	cl, err := cluster.OpenEtcd(opts.Target)
	if err != nil {
		return nil, err
	}
	members := cl.Members
	if opts.Offsite != nil && opts.Target.Cluster != "" {
		// A kubeasz cluster dir: its rebuild kit goes offsite too.
		opts.Offsite.Kit = &kit.Source{Dir: cl.Dir, Cluster: cl.Name, Base: opts.Target.Base, IncludeSSHKey: opts.IncludeSSHKey}
	}
	// The cluster's run lock, as a restore takes it: no backup of data a
	// restore is swapping, on the bastion and on every reachable etcd host.
	lock, err := runlock.AcquireRun(filepath.Join(cl.Dir, runlock.FileName), "backup", "cluster "+cl.Name, opts.BreakLock, logWriter(opts.Log))
	if err != nil {
		return nil, err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	// Every etcd host at once, the same way a restore connects; then the
	// members in inventory order until one gives a verified backup.
	pool := cl.Connect(ctx, cl.Inventory.EtcdHosts(), opts.Forks)
	defer pool.Close()
	// The hosts' locks go while their connections are open (deferred calls
	// run last first); Release later only frees the bastion's.
	defer lock.ReleaseHosts(ctx)
	failed := pool.Failed()
	var conns []transport.Conn
	for _, h := range cl.Inventory.EtcdHosts() {
		if c, ok := pool.Get(h.Name); ok {
			conns = append(conns, c)
		}
	}
	if err := lock.LockHosts(ctx, conns, opts.Forks); err != nil {
		return nil, err
	}
	// The host locks go while their connections are still open (deferred
	// after pool.Close, so run before it).
	defer lock.ReleaseHosts(context.WithoutCancel(ctx))
	var skipped []SkippedMember
	for i, m := range members {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var res *Result
		err, unreachable := failed[m.Host.Name]
		if unreachable {
			err = fmt.Errorf("unreachable: %w", err)
		} else {
			conn, _ := pool.Get(m.Host.Name)
			res, err = fromMember(ctx, opts, cl, conn, m)
		}
		if err == nil {
			res.Skipped = skipped
			// The hosts are done with: free them before the proof and the
			// upload, which may take minutes. The bastion's lock stays
			// until pruning is over.
			lock.ReleaseHosts(ctx)
			pool.Close()
			return res, finish(ctx, opts, res)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		he := SkippedMember{Member: m.Name, Host: m.Host.Name, Err: err}
		if i < len(members)-1 {
			opts.Log("skipped %s; trying the next member", he)
		}
		skipped = append(skipped, he)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s: %v; tried:", cl.Name, ErrNoHealthyMember)
	for _, s := range skipped {
		fmt.Fprintf(&b, "\n  %s", s)
	}
	return nil, &noMemberError{msg: b.String(), Skipped: skipped}
}

type noMemberError struct {
	msg     string
	Skipped []SkippedMember
}

func (e *noMemberError) Error() string { return e.msg }

// SkippedHosts are the members tried, each with why it gave no backup.
func (e *noMemberError) SkippedHosts() []SkippedMember { return e.Skipped }
func (e *noMemberError) Unwrap() error                 { return ErrNoHealthyMember }

// run runs cmd and turns a non-zero exit into an error with its stderr.
func run(ctx context.Context, c transport.Conn, what, cmd string) ([]byte, error) {
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

// fromMember takes, downloads and files a backup from member m. It reaches
// etcd the way the member's own unit sets it up (etcdhost.GatherEtcd), with the
// one etcdctl command line and status reader the restore uses.
func fromMember(ctx context.Context, opts Options, cl *cluster.Cluster, conn transport.Conn, m inventory.EtcdMember) (*Result, error) {
	facts, err := etcdhost.GatherEtcd(ctx, conn, m.Host)
	if err != nil {
		return nil, fmt.Errorf("reading the etcd unit: %w", err)
	}
	if facts.Etcdctl == "" {
		return nil, errors.New("no etcdctl in bin_dir or PATH")
	}
	client := etcdhost.ClientFor(facts)
	// A member that cannot serve a quorum read is not one to back up from.
	if _, err := run(ctx, conn, "etcd health", client.Cmd("--dial-timeout=2s", "--command-timeout=5s", "endpoint", "health")); err != nil {
		return nil, err
	}
	st := etcdhost.QueryMember(ctx, conn, m.Host.Name, client)
	version := st.Version

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
		if _, err := run(cctx, conn, "remove "+tmpDir, "rm -rf -- "+transport.Quote(tmpDir)); err != nil {
			opts.Log("warning: %s: %v", m.Host.Name, err)
		}
	}()
	remote := tmpDir + "/snapshot.db"
	taken := opts.Now()
	opts.Log("taking a snapshot on %s (%s)", m.Host.Name, m.Name)
	if _, err := run(ctx, conn, "etcdctl snapshot save", client.Cmd("snapshot", "save", remote)); err != nil {
		return nil, err
	}
	size, remoteSum, err := transport.RemoteSizeSha256(ctx, conn, remote)
	if err != nil {
		return nil, fmt.Errorf("size and sha256 of the snapshot: %w", err)
	}

	backupDir := cl.BackupDir
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
		Cluster:     cl.Name,
	}
	if err := snapshot.WriteSidecar(path, &side); err != nil {
		return nil, fmt.Errorf("backup %s is filed but its sidecar is not: %w", path, err)
	}
	if err := snapshot.RefreshLatest(backupDir, path, &side); err != nil {
		return nil, fmt.Errorf("backup %s is filed but %s was not refreshed: %w", path, snapshot.LatestName, err)
	}
	return &Result{Path: path, Sidecar: side, Info: info}, nil
}

// verify checks a downloaded snapshot: the same bytes as on the host, etcd's
// sha256 trailer present and matching, and an etcd database (with a
// revision, unless it holds no key yet: a fresh cluster).
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
	case info.Revision <= 0 && info.Keys > 0:
		// A fresh cluster's snapshot has no key yet, hence no revision in
		// its key bucket: that is a good backup. Keys without one are not.
		return nil, fmt.Errorf("snapshot holds %d keys but no revision: not a database etcd wrote", info.Keys)
	}
	return info, nil
}

// logWriter turns Log into a writer, one call a line, for what the run lock says aloud.
type logWriter func(format string, args ...any)

func (w logWriter) Write(p []byte) (int, error) {
	w("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
