package restore_test

// End-to-end tests of `ezrestore plan` and `ezrestore restore` on the lab:
// real nspawn hosts, real systemd, sshd and etcd with TLS. Each test runs the
// built binary as an operator would and judges the result with the lab's own
// checks (OpenSSH and each host's etcdctl), not with ezrestore's code.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

var binary string

func TestMain(m *testing.M) {
	binary = os.Getenv("EZRESTORE_BIN")
	if binary == "" && os.Getenv("EZRESTORE_E2E") == "1" {
		dir, err := os.MkdirTemp("", "ezrestore-bin")
		if err != nil {
			panic(err)
		}
		binary = filepath.Join(dir, "ezrestore")
		out, err := exec.Command("go", "build", "-o", binary, "../cmd/ezrestore").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building ezrestore: %v\n%s", err, out)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
	}
	os.Exit(m.Run())
}

// cli runs the binary against the lab's base dir and returns its combined output.
func cli(t *testing.T, l *lab.Lab, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--base", l.Opts.Base}, args...)...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	t.Logf("$ ezrestore %s\n%s", strings.Join(args, " "), out)
	return string(out), err
}

func sh(t *testing.T, l *lab.Lab, addr, cmd string) string {
	t.Helper()
	out, err := l.Exec(context.Background(), addr, cmd)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return strings.TrimSpace(string(out))
}

func etcdctl(t *testing.T, l *lab.Lab, addr, args string) string {
	t.Helper()
	return sh(t, l, addr, lab.EtcdctlCmd(addr)+" "+args)
}

// seedKeys writes the seed article's keys through the first member.
func seedKeys(t *testing.T, l *lab.Lab) {
	a := l.EtcdHosts()[0].Address
	for _, k := range []string{"/registry/namespaces/default", "/registry/pods/default/net-test1", "/registry/pods/default/net-test3"} {
		etcdctl(t, l, a, "put "+k+" value-of-"+filepath.Base(k))
	}
}

// saveSnapshot takes a snapshot on a member and copies it into the cluster's backup/ as name.
func saveSnapshot(t *testing.T, l *lab.Lab, name string) string {
	a := l.EtcdHosts()[0].Address
	remote := "/root/" + name
	etcdctl(t, l, a, "snapshot save "+remote+" >/dev/null 2>&1")
	return fetch(t, l, a, remote, name)
}

// fetch copies a file from a host into the cluster's backup/ through plain OpenSSH.
func fetch(t *testing.T, l *lab.Lab, addr, remote, name string) string {
	out, err := l.Exec(context.Background(), addr, "cat "+remote)
	if err != nil {
		t.Fatal(err)
	}
	dir := l.Dir.BackupDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func keys(t *testing.T, l *lab.Lab, addr string) string {
	return etcdctl(t, l, addr, "get --prefix /registry --keys-only")
}

// hostState is what must not move when nothing is supposed to change.
func hostState(t *testing.T, l *lab.Lab, addr string) string {
	// The db's inode, not its mtime: etcd itself writes its db when raft
	// applies an entry, as a leader election on a loaded machine does, and
	// that is no change of ours. A swap or a restore replaces the file.
	return sh(t, l, addr, "systemctl show -p ActiveState -p ActiveEnterTimestampMonotonic etcd kube-apiserver kubelet; stat -c '%i %Y' /var/lib/etcd/member; stat -c %i /var/lib/etcd/member/snap/db; ls -a /var/lib/etcd")
}

func allStates(t *testing.T, l *lab.Lab) map[string]string {
	m := map[string]string{}
	for _, h := range l.EtcdHosts() {
		m[h.Address] = hostState(t, l, h.Address)
	}
	return m
}

func requireUnchanged(t *testing.T, l *lab.Lab, before map[string]string, what string) {
	t.Helper()
	for addr, b := range before {
		if a := hostState(t, l, addr); a != b {
			t.Fatalf("%s changed host %s:\nbefore:\n%s\nafter:\n%s", what, addr, b, a)
		}
	}
}

// requireHealthy judges the cluster with the lab's own check: every member
// answers, one leader, one cluster ID, the inventory's members.
func requireHealthy(t *testing.T, l *lab.Lab) *lab.Health {
	t.Helper()
	h := l.EtcdHealth(context.Background())
	if !h.Healthy {
		t.Fatalf("cluster not healthy:\n%s", h)
	}
	ids := map[uint64]bool{}
	for _, m := range h.Members {
		if ids[m.MemberID] {
			t.Fatalf("two members share ID %x:\n%s", m.MemberID, h)
		}
		ids[m.MemberID] = true
	}
	return h
}

// monotonic reads a systemd timestamp property of a unit (microseconds on the shared kernel clock).
func monotonic(t *testing.T, l *lab.Lab, addr, unit, prop string) int64 {
	v := sh(t, l, addr, "systemctl show -p "+prop+" --value "+unit)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("%s %s %s: %q", addr, unit, prop, v)
	}
	return n
}

func TestRestoreSeedScenario(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "e2e-restore"})
	first := l.EtcdHosts()[0].Address
	seedKeys(t, l)
	saveSnapshot(t, l, "seed.db")
	etcdctl(t, l, first, "del /registry/pods/default/net-test3")
	etcdctl(t, l, first, "put /registry/configmaps/default/after-seed x")
	if k := keys(t, l, first); strings.Contains(k, "net-test3") {
		t.Fatalf("net-test3 not deleted: %s", k)
	}

	// plan changes nothing anywhere.
	before := allStates(t, l)
	out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db")
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	for _, h := range l.EtcdHosts() {
		for _, want := range []string{"--name " + lab.EtcdMemberName(h.Address), "--initial-advertise-peer-urls https://" + h.Address + ":2380"} {
			if !strings.Contains(out, want) {
				t.Errorf("plan lacks %q", want)
			}
		}
	}
	// Who leads now, read in preflight's round trips (etcd is healthy here).
	if !regexp.MustCompile(`leader now: 127\.[0-9.]+ \(the step goes by this reading when it runs within 30s of it, else it asks again\)`).MatchString(out) {
		t.Errorf("plan does not name the current leader")
	}
	requireUnchanged(t, l, before, "plan")

	// Without a terminal and without --yes, restore refuses before any change.
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db")
	if err == nil || !strings.Contains(out, "--yes") || !strings.Contains(out, "Nothing was changed") {
		t.Fatalf("restore without --yes and without a terminal should refuse; err=%v", err)
	}
	requireUnchanged(t, l, before, "a refused restore")

	t0 := time.Now()
	if _, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	t.Logf("restore took %v", time.Since(t0))
	h := requireHealthy(t, l)
	t.Logf("after restore:\n%s", h)
	for _, host := range l.EtcdHosts() {
		k := keys(t, l, host.Address)
		if !strings.Contains(k, "/registry/pods/default/net-test3") || strings.Contains(k, "after-seed") {
			t.Fatalf("%s does not hold the snapshot's keys: %s", host.Address, k)
		}
		// The old member dir is kept aside, whole.
		sh(t, l, host.Address, "test -s /var/lib/etcd/member.before-*/snap/db")
	}
	// Kube components were stopped before etcd stopped, and started after it started.
	for _, m := range l.Masters() {
		a := m.Address
		etcdDown := monotonic(t, l, a, "etcd", "InactiveEnterTimestampMonotonic")
		etcdUp := monotonic(t, l, a, "etcd", "ActiveEnterTimestampMonotonic")
		for _, u := range []string{"kube-apiserver", "kubelet"} {
			if down := monotonic(t, l, a, u, "InactiveEnterTimestampMonotonic"); down > etcdDown {
				t.Errorf("%s: %s stopped after etcd", a, u)
			}
			if up := monotonic(t, l, a, u, "ActiveEnterTimestampMonotonic"); up < etcdUp {
				t.Errorf("%s: %s started before etcd", a, u)
			}
			if s := sh(t, l, a, "systemctl is-active "+u); s != "active" {
				t.Errorf("%s: %s is %s", a, u, s)
			}
		}
	}
	for _, n := range l.Nodes() {
		if s := sh(t, l, n.Address, "systemctl is-active kubelet kube-proxy"); s != "active\nactive" {
			t.Errorf("%s: kubelet/kube-proxy: %s", n.Address, s)
		}
	}
	// Every run leaves a record, the refused one too.
	recs, _ := filepath.Glob(filepath.Join(l.Dir.RestoresDir(), "*", "events.jsonl"))
	if len(recs) != 2 {
		t.Fatalf("want two run records, found %v", recs)
	}

	// A db copied from member/snap/db (no sha256 trailer) restores too. The
	// set-aside dir holds the pre-restore state: after-seed, no net-test3.
	copied := fetch(t, l, first, "$(ls -d /var/lib/etcd/member.before-*)/snap/db", "copied.db")
	out, err = cli(t, l, "plan", l.Opts.Name, "--snapshot", copied)
	if err != nil || !strings.Contains(out, "--skip-hash-check") {
		t.Fatalf("plan for a copied db should restore with --skip-hash-check: %v", err)
	}
	if _, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", copied, "--yes"); err != nil {
		t.Fatalf("restore of copied db: %v", err)
	}
	requireHealthy(t, l)
	if k := keys(t, l, l.EtcdHosts()[2].Address); strings.Contains(k, "net-test3") || !strings.Contains(k, "after-seed") {
		t.Fatalf("copied db not restored: %s", k)
	}
	// Both restores' old dirs are kept.
	if n := sh(t, l, first, "ls -d /var/lib/etcd/member.before-* | wc -l"); n != "2" {
		t.Fatalf("want 2 set-aside member dirs, got %s", n)
	}
}

func TestRestoreAfterMajorityLoss(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "e2e-loss", Nodes: 1})
	ctx := context.Background()
	seedKeys(t, l)
	saveSnapshot(t, l, "snapshot.db")
	etcd := l.EtcdHosts()
	for _, h := range etcd[1:] {
		if err := l.Kill(ctx, h.Address); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := cli(t, l, "status", l.Opts.Name); err == nil || !strings.Contains(out, "no quorum") {
		t.Fatalf("status with two of three members dead should say no quorum: %v", err)
	}
	// Power comes back, but both disks are empty.
	for _, h := range etcd[1:] {
		if err := l.Start(ctx, h.Address); err != nil {
			t.Fatal(err)
		}
		sh(t, l, h.Address, "systemctl stop etcd; rm -rf /var/lib/etcd/member")
	}
	// A worker is down too: it cannot write to etcd, so it is reported and skipped.
	worker := l.Nodes()[0].Address
	if err := l.Kill(ctx, worker); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, l, "restore", l.Opts.Name, "--yes")
	if err != nil {
		t.Fatalf("restore after majority loss: %v", err)
	}
	if !strings.Contains(out, "skipped: ["+worker+"] unreachable") {
		t.Errorf("the dead worker %s should be reported as skipped", worker)
	}
	requireHealthy(t, l)
	for _, h := range etcd {
		if k := keys(t, l, h.Address); !strings.Contains(k, "net-test3") {
			t.Fatalf("%s lacks the snapshot's keys: %s", h.Address, k)
		}
	}
	if out, err := cli(t, l, "status", l.Opts.Name); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("status after restore: %v", err)
	}
}

func TestPreflightFailuresChangeNothing(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "e2e-preflight", Nodes: -1})
	seedKeys(t, l)
	good := saveSnapshot(t, l, "good.db")
	before := allStates(t, l)
	third := l.EtcdHosts()[2].Address

	refuse := func(what string, args []string, wants ...string) {
		t.Helper()
		out, err := cli(t, l, append([]string{"restore", "--yes"}, args...)...)
		if err == nil {
			t.Fatalf("%s: restore succeeded", what)
		}
		for _, w := range append(wants, "Nothing was changed") {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q", what, w)
			}
		}
		requireUnchanged(t, l, before, what)
	}

	// A corrupt snapshot: one byte flipped in the middle.
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	bad := filepath.Join(l.Dir.BackupDir(), "bad.db")
	os.WriteFile(bad, data, 0o600)
	refuse("corrupt snapshot", []string{l.Opts.Name, "--snapshot", "bad.db"}, "damaged")
	// A truncated copy: the first half of the file.
	os.WriteFile(filepath.Join(l.Dir.BackupDir(), "cut.db"), data[:len(data)/2], 0o600)
	refuse("truncated snapshot", []string{l.Opts.Name, "--snapshot", "cut.db"}, "cut.db")

	// An unknown host key: an inventory beside a known_hosts that lacks one host.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "ssh"), 0o700)
	hosts, _ := os.ReadFile(l.Dir.Hosts())
	inv := filepath.Join(dir, "hosts")
	// Without the lab's own OpenSSH options, which name its full known_hosts.
	hosts = regexp.MustCompile(`(?m)^ansible_ssh_common_args=.*\n`).ReplaceAll(hosts, nil)
	os.WriteFile(inv, []byte(strings.ReplaceAll(string(hosts), "_cluster_name_", l.Opts.Name)), 0o600)
	kh, _ := os.ReadFile(l.Dir.KnownHosts())
	var kept []string
	for _, line := range strings.Split(string(kh), "\n") {
		if line != "" && !strings.HasPrefix(line, third+" ") {
			kept = append(kept, line)
		}
	}
	os.WriteFile(filepath.Join(dir, "ssh", "known_hosts"), []byte(strings.Join(kept, "\n")+"\n"), 0o600)
	refuse("unknown host key", []string{"-i", inv, "--snapshot", good}, third)

	// A unit that names its member differently from the inventory.
	sh(t, l, third, "sed -i 's/--name=etcd-/--name=renamed-/' /etc/systemd/system/etcd.service && systemctl daemon-reload")
	refuse("name mismatch", []string{l.Opts.Name, "--snapshot", "good.db"}, "member unknown", "renamed-"+third)
	sh(t, l, third, "sed -i 's/--name=renamed-/--name=etcd-/' /etc/systemd/system/etcd.service && systemctl daemon-reload")

	// A unit the playbook stops is not installed on one host: named, alone.
	sh(t, l, third, "mv /etc/systemd/system/kube-scheduler.service /root/kube-scheduler.service.hidden && systemctl daemon-reload")
	refuse("missing unit", []string{l.Opts.Name, "--snapshot", "good.db"}, "host "+third, "units not installed: kube-scheduler.service (a later step")
	sh(t, l, third, "mv /root/kube-scheduler.service.hidden /etc/systemd/system/kube-scheduler.service && systemctl daemon-reload && systemctl start kube-scheduler")

	// No restore tool on one host.
	sh(t, l, third, "mv /opt/kube/bin/etcdctl /opt/kube/bin/etcdctl.hidden; mv /usr/bin/etcdctl /usr/bin/etcdctl.hidden 2>/dev/null; true")
	refuse("missing restore tool", []string{l.Opts.Name, "--snapshot", "good.db"}, "neither etcdutl nor etcdctl")
	sh(t, l, third, "mv /opt/kube/bin/etcdctl.hidden /opt/kube/bin/etcdctl; mv /usr/bin/etcdctl.hidden /usr/bin/etcdctl 2>/dev/null; true")

	// Through a sudo user (become), the plan works and says so.
	opsDir := t.TempDir()
	opsInv := filepath.Join(opsDir, "hosts")
	os.WriteFile(opsInv, []byte(strings.Replace(string(hosts), "ansible_user=root", "ansible_user=ops\nansible_become=true", 1)), 0o600)
	os.MkdirAll(filepath.Join(opsDir, "ssh"), 0o700)
	os.WriteFile(filepath.Join(opsDir, "ssh", "known_hosts"), kh, 0o600)
	out, err := cli(t, l, "plan", "-i", opsInv, "--snapshot", good)
	if err != nil || !strings.Contains(out, "ssh as ops, root through sudo") {
		t.Fatalf("plan as ops with become: %v", err)
	}
	requireUnchanged(t, l, before, "plan through sudo")
	requireHealthy(t, l)
}

// moveWAL gives every member a separate --wal-dir, as some installs do.
func moveWAL(t *testing.T, l *lab.Lab, walDir string) {
	for _, h := range l.EtcdHosts() {
		sh(t, l, h.Address, "systemctl stop etcd && mv /var/lib/etcd/member/wal "+walDir+
			` && sed -i 's|--data-dir=/var/lib/etcd \\|--data-dir=/var/lib/etcd --wal-dir=`+walDir+` \\|' /etc/systemd/system/etcd.service`+
			" && grep -q -- --wal-dir= /etc/systemd/system/etcd.service && systemctl daemon-reload")
	}
	for _, h := range l.EtcdHosts() {
		sh(t, l, h.Address, "systemctl start --no-block etcd")
	}
	deadline := time.Now().Add(60 * time.Second)
	for !l.EtcdHealth(context.Background()).Healthy {
		if time.Now().After(deadline) {
			t.Fatalf("cluster not healthy after moving the WAL:\n%s", l.EtcdHealth(context.Background()))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestRestoreEtcd36WithWALDir(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "e2e-etcd36", EtcdVersion: "3.6", Nodes: -1})
	first := l.EtcdHosts()[0].Address
	seedKeys(t, l)
	saveSnapshot(t, l, "seed.db")
	etcdctl(t, l, first, "del /registry/pods/default/net-test3")
	const wal = "/var/lib/etcd-wal"
	moveWAL(t, l, wal)
	out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "etcdutl 3.6") || !strings.Contains(out, "--bump-revision 1000000000 --mark-compacted") {
		t.Fatalf("3.6 plan should restore with etcdutl and bump the revision")
	}
	if !strings.Contains(out, "--wal-dir "+wal+".ezrestore-") || !strings.Contains(out, wal+".before-") {
		t.Fatalf("plan ignores the unit's --wal-dir")
	}
	if _, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	h := requireHealthy(t, l)
	for _, m := range h.Members {
		if m.Revision < 1000000000 {
			t.Errorf("%s: revision %d was not bumped", m.Address, m.Revision)
		}
	}
	if k := keys(t, l, first); !strings.Contains(k, "net-test3") {
		t.Fatalf("net-test3 not back: %s", k)
	}
	// The new WAL is where the unit wants it; the old one is kept aside whole.
	for _, h := range l.EtcdHosts() {
		sh(t, l, h.Address, "ls "+wal+"/*.wal >/dev/null && ls "+wal+".before-*/*.wal >/dev/null && test ! -e /var/lib/etcd/member/wal")
	}
}

// The seed scenario on the other etcd minors the lab can build.
func TestRestoreOtherEtcdVersions(t *testing.T) {
	for _, v := range []string{"3.5", "3.7"} {
		t.Run(v, func(t *testing.T) {
			l := labtest.Up(t, lab.Options{Name: "e2e-etcd" + strings.ReplaceAll(v, ".", ""), EtcdVersion: v, Nodes: -1})
			first := l.EtcdHosts()[0].Address
			seedKeys(t, l)
			saveSnapshot(t, l, "seed.db")
			etcdctl(t, l, first, "del /registry/pods/default/net-test3")
			out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "seed.db")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "etcdutl "+v) {
				t.Fatalf("plan should restore with etcdutl %s", v)
			}
			bumped := strings.Contains(out, "--bump-revision 1000000000")
			if _, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes"); err != nil {
				t.Fatalf("restore: %v", err)
			}
			h := requireHealthy(t, l)
			for _, m := range h.Members {
				if bumped && m.Revision < 1000000000 {
					t.Errorf("%s: revision %d was not bumped", m.Address, m.Revision)
				}
			}
			if k := keys(t, l, first); !strings.Contains(k, "net-test3") {
				t.Fatalf("net-test3 not back: %s", k)
			}
		})
	}
}
