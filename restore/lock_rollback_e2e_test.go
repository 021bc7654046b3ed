package restore_test

// End-to-end tests of the run lock and of `ezrestore rollback` on the lab:
// real nspawn hosts with systemd, sshd and etcd (TLS), the built binary run
// as an operator would, results judged with the lab's own checks.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
	"github.com/ezrestore/ezrestore/runlock"
)

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func requireContains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q", what, w)
		}
	}
}

// requireNoLocks checks that no run lock is left on the bastion or any etcd host.
func requireNoLocks(t *testing.T, l *lab.Lab) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(l.Dir.Path, runlock.FileName)); !os.IsNotExist(err) {
		t.Errorf("bastion lock left behind: %v", err)
	}
	for _, h := range l.EtcdHosts() {
		if out := sh(t, l, h.Address, "ls "+runlock.RemotePath+" 2>/dev/null || true"); out != "" {
			t.Errorf("host %s: run lock left behind: %s", h.Address, out)
		}
	}
}

func TestRunLock(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "lr-lock", Nodes: -1})
	seedKeys(t, l)
	saveSnapshot(t, l, "seed.db")
	before := allStates(t, l)
	lockFile := filepath.Join(l.Dir.Path, runlock.FileName)

	// A live holder on this bastion (this test process, heartbeat running):
	// a second run refuses at once, naming it, and changes nothing.
	holder := runlock.NewHolder("restore", "cluster "+l.Opts.Name, "20990101T000000Z")
	live, err := runlock.Acquire(lockFile, holder, false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes", "--break-lock")
	if exitCode(err) != 3 {
		t.Errorf("restore under a live lock: exit %d, want 3", exitCode(err))
	}
	requireContains(t, "live lock", out, "is locked by `ezrestore restore` run 20990101T000000Z", "pid ", "user ", "on bastion ", "since ", "wait for it to end")
	if strings.Contains(out, "looks stale") {
		t.Errorf("a live lock was called stale")
	}
	// plan takes no lock but warns.
	out, err = cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db")
	if err != nil {
		t.Fatalf("plan under a lock: %v", err)
	}
	requireContains(t, "plan under a lock", out, "Warning: cluster "+l.Opts.Name+" is locked by")
	requireUnchanged(t, l, before, "a run refused by the lock")
	if err := live.Release(); err != nil {
		t.Fatal(err)
	}

	// A live lock on one etcd host, from another bastion: refused there,
	// naming host and holder; the locks taken meanwhile are removed again.
	third := l.EtcdHosts()[2].Address
	far := runlock.NewHolder("backup", "cluster "+l.Opts.Name, "far-run")
	far.Host = "other-bastion"
	farJSON, _ := json.Marshal(far)
	sh(t, l, third, "mkdir -p /var/lib/ezrestore && printf '%s\\n' '"+string(farJSON)+"' > "+runlock.RemotePath)
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes")
	if exitCode(err) != 3 {
		t.Errorf("restore under a host's lock: exit %d, want 3", exitCode(err))
	}
	requireContains(t, "host lock", out, "host "+third, "`ezrestore backup` run far-run", "other-bastion", "Nothing was changed")
	requireUnchanged(t, l, before, "a run refused by a host's lock")
	sh(t, l, third, "rm -f "+runlock.RemotePath)
	requireNoLocks(t, l)

	// A holder that died (its pid is gone on this bastion): refused with the
	// hint, then taken over with --break-lock, said aloud and recorded.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := runlock.NewHolder("restore", "cluster "+l.Opts.Name, "dead-run")
	stale.PID = dead.Process.Pid
	staleJSON, _ := json.Marshal(stale)
	if err := os.WriteFile(lockFile, staleJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	// The same dead holder on a host too (a run killed mid-way leaves both).
	sh(t, l, third, "mkdir -p /var/lib/ezrestore && printf '%s\\n' '"+string(staleJSON)+"' > "+runlock.RemotePath)
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes")
	if exitCode(err) != 3 {
		t.Errorf("restore under a stale lock: exit %d, want 3", exitCode(err))
	}
	requireContains(t, "stale lock", out, "run dead-run", "looks stale", "is gone on this bastion", "--break-lock")
	requireUnchanged(t, l, before, "a run refused by a stale lock")

	// Written after the snapshot: only the data the restore sets aside holds it.
	etcdctl(t, l, l.EtcdHosts()[0].Address, "put /registry/configmaps/default/before-restore kept")
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes", "--break-lock")
	if err != nil {
		t.Fatalf("restore --break-lock: %v", err)
	}
	requireContains(t, "break-lock", out, "WARNING: took over the stale lock", "WARNING: took over the stale run lock "+runlock.RemotePath+" on host "+third)
	requireHealthy(t, l)
	recs, _ := filepath.Glob(filepath.Join(l.Dir.RestoresDir(), "*", "lock.json"))
	var recorded bool
	for _, r := range recs {
		b, _ := os.ReadFile(r)
		if strings.Contains(string(b), "dead-run") && strings.Contains(string(b), "took over") {
			recorded = true
			ev, _ := os.ReadFile(filepath.Join(filepath.Dir(r), "events.jsonl"))
			if !strings.Contains(string(ev), `"lock-broken"`) {
				t.Errorf("events of %s lack the take-over", filepath.Dir(r))
			}
		}
	}
	if !recorded {
		t.Errorf("no run record keeps the take-over (lock.json files: %v)", recs)
	}
	requireNoLocks(t, l)

	// The printed put-back commands, run on every etcd host at once as the
	// output says, return promptly and bring the old cluster back.
	requireContains(t, "put-back text", out, "on every etcd host", "ezrestore status", "systemctl start --no-block etcd")
	side, _ := filepath.Glob(filepath.Join(l.Dir.RestoresDir(), "*", "set-aside.json"))
	sort.Strings(side)
	var rec struct {
		Hosts []struct {
			Host    string `json:"host"`
			PutBack string `json:"put_back"`
		} `json:"hosts"`
	}
	if len(side) == 0 {
		t.Fatal("no set-aside.json in the run records")
	}
	b, _ := os.ReadFile(side[len(side)-1])
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.Hosts) != len(l.EtcdHosts()) {
		t.Fatalf("set-aside.json: %v %s", err, b)
	}
	t0 := time.Now()
	errs := make(chan error, len(rec.Hosts))
	for _, h := range rec.Hosts {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := l.Exec(ctx, h.Host, h.PutBack)
			errs <- err
		}()
	}
	for range rec.Hosts {
		if err := <-errs; err != nil {
			t.Errorf("put-back command: %v", err)
		}
	}
	t.Logf("put-back commands on all hosts at once returned after %v", time.Since(t0))
	deadline := time.Now().Add(60 * time.Second)
	for !l.EtcdHealth(context.Background()).Healthy && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	requireHealthy(t, l)
	t.Logf("healthy %v after the put-back commands started", time.Since(t0))
	for _, h := range l.EtcdHosts() {
		if v := etcdctl(t, l, h.Address, "get /registry/configmaps/default/before-restore --print-value-only"); v != "kept" {
			t.Errorf("%s: after the put-back commands the pre-restore key reads %q", h.Address, v)
		}
	}
}

func TestRollbackAfterFailedRestore(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "lr-rollback", Nodes: 1})
	first := l.EtcdHosts()[0].Address
	third := l.EtcdHosts()[2].Address
	seedKeys(t, l)
	saveSnapshot(t, l, "seed.db")
	// Written after the snapshot: only the data set aside holds it.
	etcdctl(t, l, first, "put /registry/configmaps/default/before-restore kept")

	// etcd cannot start on one member; preflight does not start etcd, so the
	// restore runs up to the health wait and fails there.
	const dropIn = "/etc/systemd/system/etcd.service.d/lr-fail.conf"
	sh(t, l, third, "mkdir -p "+filepath.Dir(dropIn)+" && printf '[Service]\\nExecStartPre=/bin/false\\n' > "+dropIn+" && systemctl daemon-reload")
	out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes", "--health-timeout", "20s")
	if err == nil {
		t.Fatal("restore with a member that cannot start succeeded")
	}
	requireContains(t, "failed restore", out, "wait for etcd health", "ezrestore rollback", "every etcd host")
	requireNoLocks(t, l)
	sh(t, l, third, "rm -f "+dropIn+" && systemctl daemon-reload && systemctl reset-failed etcd || true")

	// Without a terminal and without --yes, rollback refuses before any
	// change. (Two members run the restored data meanwhile, so their db files
	// move: compare the dirs and the units, not the db's time.)
	layout := func() map[string]string {
		m := map[string]string{}
		for _, h := range l.EtcdHosts() {
			m[h.Address] = sh(t, l, h.Address, "ls -ai /var/lib/etcd; systemctl show -p ActiveEnterTimestampMonotonic etcd kube-apiserver kubelet")
		}
		return m
	}
	// The restore gave up within seconds: let every etcd settle first (the
	// fixed member restarts on its own, Restart=always), so what is compared
	// is the rollback's doing only.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		settled := true
		for _, h := range l.EtcdHosts() {
			if sh(t, l, h.Address, "systemctl show -p ActiveState etcd") != "ActiveState=active" {
				settled = false
			}
		}
		if settled {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	before := layout()
	out, err = cli(t, l, "rollback", l.Opts.Name)
	if err == nil {
		t.Fatal("rollback without --yes and without a terminal went on")
	}
	requireContains(t, "unconfirmed rollback", out, "--yes", "Nothing was changed", "member.before-")
	if after := layout(); !reflect.DeepEqual(before, after) {
		t.Fatalf("an unconfirmed rollback changed hosts:\nbefore: %v\nafter: %v", before, after)
	}

	t0 := time.Now()
	out, err = cli(t, l, "rollback", l.Opts.Name, "--yes")
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	t.Logf("rollback took %v", time.Since(t0))
	requireContains(t, "rollback", out, "put back old data", "etcd is back on the data run")
	h := requireHealthy(t, l)
	t.Logf("after rollback:\n%s", h)
	for _, host := range l.EtcdHosts() {
		a := host.Address
		if v := etcdctl(t, l, a, "get /registry/configmaps/default/before-restore --print-value-only"); v != "kept" {
			t.Errorf("%s: the key written before the restore reads %q after rollback", a, v)
		}
		// Nothing deleted: the restored data sits beside the old, the set-aside dir moved back.
		sh(t, l, a, "test -s /var/lib/etcd/member.restored-*/snap/db && ! ls -d /var/lib/etcd/member.before-* 2>/dev/null")
	}
	for _, m := range l.Masters() {
		if s := sh(t, l, m.Address, "systemctl is-active kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"); strings.Count(s, "active") != 5 || strings.Contains(s, "inactive") {
			t.Errorf("%s: kube units after rollback: %s", m.Address, s)
		}
	}
	for _, n := range l.Nodes() {
		if s := sh(t, l, n.Address, "systemctl is-active kubelet kube-proxy"); s != "active\nactive" {
			t.Errorf("%s: kubelet/kube-proxy after rollback: %s", n.Address, s)
		}
	}
	if recs, _ := filepath.Glob(filepath.Join(l.Dir.Path, "rollbacks", "*", "events.jsonl")); len(recs) == 0 {
		t.Errorf("the rollback left no run record")
	}
	requireNoLocks(t, l)

	// A second rollback finds the data back already and changes nothing.
	before = allStates(t, l)
	out, err = cli(t, l, "rollback", l.Opts.Name, "--yes")
	if err == nil {
		t.Fatal("a second rollback of the same run went on")
	}
	requireContains(t, "second rollback", out, "back in place on every etcd host already", "Nothing was changed")
	requireUnchanged(t, l, before, "a second rollback")
	if out, err := cli(t, l, "status", l.Opts.Name); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("status after rollback: %v", err)
	}
}
