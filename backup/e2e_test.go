package backup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
	"github.com/ezrestore/ezrestore/snapshot"
)

// Backups from the lab's real TLS etcd cluster: with every member up, with
// one powered off, and with all of them off.
func TestBackupOnLab(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "bk-e2e", Nodes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	etcd := l.EtcdHosts()
	if len(etcd) < 3 {
		t.Fatalf("lab has %d etcd hosts", len(etcd))
	}
	etcdctl := func(addr string, args ...string) {
		t.Helper()
		cmd := lab.EtcdctlCmd(addr)
		for _, a := range args {
			cmd += " " + a
		}
		if out, err := l.Exec(ctx, addr, cmd); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	logf := func(f string, a ...any) { t.Logf(f, a...) }
	// A cluster no one has written to yet can be backed up too.
	fresh, err := Take(ctx, Options{Target: labTarget(l), Log: logf})
	if err != nil {
		t.Fatalf("backup of a fresh cluster: %v", err)
	}
	checkFiled(t, fresh)
	if fresh.Info.Keys != 0 {
		t.Errorf("fresh cluster's backup holds %d keys", fresh.Info.Keys)
	}
	// Out of the way, so the --keep count below is about the later ones.
	for _, p := range []string{fresh.Path, snapshot.SidecarPath(fresh.Path)} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	etcdctl(etcd[0].Address, "put", "/registry/pods/default/net-test3", "pod")

	first, err := Take(ctx, Options{Target: labTarget(l), Log: logf})
	if err != nil {
		t.Fatalf("backup with every member up: %v", err)
	}
	checkFiled(t, first)
	if len(first.Skipped) != 0 || first.Sidecar.SourceHost != etcd[0].Address {
		t.Errorf("first backup from %s, skipped %v", first.Sidecar.SourceHost, first.Skipped)
	}
	if first.Sidecar.EtcdVersion == "" {
		t.Errorf("no etcd version in the sidecar")
	}
	noTempLeft(t, ctx, l, etcd[0].Address)

	etcdctl(etcd[1].Address, "del", "/registry/pods/default/net-test3")
	if err := l.Kill(ctx, etcd[0].Address); err != nil {
		t.Fatal(err)
	}
	second, err := Take(ctx, Options{Target: labTarget(l), Log: logf})
	if err != nil {
		t.Fatalf("backup with %s down: %v", etcd[0].Address, err)
	}
	checkFiled(t, second)
	if len(second.Skipped) != 1 || second.Skipped[0].Host != etcd[0].Address || second.Sidecar.SourceHost != etcd[1].Address {
		t.Errorf("second backup from %s, skipped %v; want %s skipped", second.Sidecar.SourceHost, second.Skipped, etcd[0].Address)
	}
	if first.Path == second.Path {
		t.Fatalf("second backup overwrote the first: %s", first.Path)
	}
	noTempLeft(t, ctx, l, etcd[1].Address)

	// The deleted key is in the first backup only.
	for _, tc := range []struct {
		path string
		want int
	}{{first.Path, 1}, {second.Path, 0}} {
		m, err := snapshot.Find(tc.path, "net-test3")
		if err != nil || len(m) != tc.want {
			t.Errorf("Find(%s) = %v, %v; want %d matches", tc.path, m, err, tc.want)
		}
	}
	if bin := os.Getenv("EZRESTORE_BIN"); bin != "" {
		out, err := exec.CommandContext(ctx, bin, "--base", l.Dir.Base, "snapshot", "find", "net-test3", "--cluster", l.Opts.Name).CombinedOutput()
		if err != nil || !strings.Contains(string(out), filepath.Base(first.Path)+" (") ||
			!strings.Contains(string(out), filepath.Base(second.Path)+" (") || !strings.Contains(string(out), "live in 1 of 2") {
			t.Errorf("snapshot find: %v\n%s", err, out)
		}
		out, err = exec.CommandContext(ctx, bin, "--base", l.Dir.Base, "snapshots", l.Opts.Name).CombinedOutput()
		if err != nil {
			t.Errorf("snapshots: %v\n%s", err, out)
		}
		t.Logf("ezrestore snapshots %s:\n%s", l.Opts.Name, out)
	}

	// --keep 2 removes the first, keeps the new one and the second.
	third, err := Take(ctx, Options{Target: labTarget(l), Keep: 2, Log: logf})
	if err != nil {
		t.Fatal(err)
	}
	checkFiled(t, third)
	if strings.Join(third.Pruned, " ") != filepath.Base(first.Path) {
		t.Errorf("pruned %v, want %s", third.Pruned, filepath.Base(first.Path))
	}

	// Two members down: the last one answers SSH but its etcd has no quorum;
	// then all three down. Each time an error naming every member, and nothing written.
	before := dirList(t, l.Dir.BackupDir())
	for i, h := range etcd[1:] {
		if err := l.Kill(ctx, h.Address); err != nil {
			t.Fatal(err)
		}
		res, err := Take(ctx, Options{Target: labTarget(l), Log: logf})
		if err == nil || !errors.Is(err, ErrNoHealthyMember) {
			t.Fatalf("backup with %d members down = %v, %v", i+2, res, err)
		}
		for _, h := range etcd {
			if !strings.Contains(err.Error(), h.Address) {
				t.Errorf("error does not name %s: %v", h.Address, err)
			}
		}
		if i == 0 && !strings.Contains(err.Error(), "etcd health") {
			t.Errorf("the member without quorum should be reported unhealthy: %v", err)
		}
		if after := dirList(t, l.Dir.BackupDir()); after != before {
			t.Errorf("backup dir changed:\n%s\nto\n%s", before, after)
		}
		noTempLeft(t, ctx, l, etcd[2].Address, i == 0)
	}
}

// checkFiled: a 0600 file under kubeasz's name, verified, with its sidecar,
// and snapshot.db a copy of it.
func checkFiled(t *testing.T, r *Result) {
	t.Helper()
	fi, err := os.Stat(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v", r.Path, fi.Mode())
	}
	if !strings.HasPrefix(filepath.Base(r.Path), "snapshot_") {
		t.Errorf("name %s", r.Path)
	}
	info, err := snapshot.Inspect(r.Path)
	if err != nil || info.HashVerified == nil || !*info.HashVerified || (info.Revision <= 0 && info.Keys > 0) {
		t.Fatalf("Inspect(%s) = %+v, %v", r.Path, info, err)
	}
	side, err := snapshot.ReadSidecar(r.Path)
	if err != nil || side == nil || side.SHA256 != info.SHA256 || side.Revision != info.Revision || side.Keys != info.Keys || side.Size != fi.Size() {
		t.Errorf("sidecar %+v, %v; file %+v", side, err, info)
	}
	latest := filepath.Join(filepath.Dir(r.Path), snapshot.LatestName)
	if sum, err := snapshot.FileSHA256(latest); err != nil || sum != info.SHA256 {
		t.Errorf("%s is not a copy of %s: %v", latest, r.Path, err)
	}
	if fi, err := os.Stat(filepath.Dir(r.Path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("backup dir mode: %v %v", fi.Mode(), err)
	}
}

func noTempLeft(t *testing.T, ctx context.Context, l *lab.Lab, addr string, up ...bool) {
	t.Helper()
	if len(up) > 0 && !up[0] {
		return
	}
	out, err := l.Exec(ctx, addr, "ls -d /tmp/ezrestore-backup.* 2>/dev/null || true")
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("%s: temporary files left: %q %v", addr, out, err)
	}
}

func dirList(t *testing.T, dir string) string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, de := range des {
		fi, _ := de.Info()
		b.WriteString(de.Name() + " " + fi.ModTime().String() + "\n")
	}
	return b.String()
}

// labTarget names the lab's cluster as an operator would: base dir and name.
func labTarget(l *lab.Lab) cluster.Selector {
	return cluster.Selector{Base: l.Dir.Base, Cluster: l.Dir.Name}
}
