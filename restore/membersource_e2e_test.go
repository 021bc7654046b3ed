package restore_test

// Issue 21 on the lab: the majority is lost, one member's data survived and
// is newer than the newest backup; `restore --snapshot member:freshest`
// brings the cluster back with every write made after the backup.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// refused runs the command, which must fail before any change, saying wants.
func refused(t *testing.T, l *lab.Lab, args []string, wants ...string) {
	t.Helper()
	out, err := cli(t, l, args...)
	if err == nil {
		t.Fatalf("ezrestore %s succeeded", strings.Join(args, " "))
	}
	requireAll(t, "the refusal", errorBlock(out), append(wants, "Nothing was changed on any host.")...)
}

func TestRestoreFromTheFreshestMember(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "survivor-e2e", Nodes: -1})
	etcd := l.EtcdHosts()
	a, b, c := etcd[0].Address, etcd[1].Address, etcd[2].Address
	seedKeys(t, l)
	if _, err := cli(t, l, "backup", l.Opts.Name); err != nil {
		t.Fatalf("backup: %v", err)
	}
	// Writes made after the backup: what a restore from it would lose.
	var after []string
	put := func(n int) {
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("/registry/configmaps/default/after-backup-%d", len(after))
			etcdctl(t, l, a, "put "+k+" v")
			after = append(after, k)
		}
	}

	t.Run("a healthy cluster is refused and nothing changes", func(t *testing.T) {
		before := allStates(t, l)
		refused(t, l, []string{"plan", l.Opts.Name, "--snapshot", "member:freshest"},
			"etcd is healthy: 3 of 3 members", "use a backup or `ezrestore recover`")
		requireUnchanged(t, l, before, "plan --snapshot member:freshest on a healthy cluster")
	})

	t.Run("a working quorum of two is refused and nothing changes", func(t *testing.T) {
		// c goes down first: its data stops at this revision.
		sh(t, l, c, "systemctl stop etcd")
		put(5)
		before := allStates(t, l)
		refused(t, l, []string{"restore", l.Opts.Name, "--snapshot", "member:freshest", "--yes"},
			"etcd still has a working quorum: 2 of 3 members", "use a backup or `ezrestore recover`")
		requireUnchanged(t, l, before, "restore --snapshot member:freshest with a working quorum")
		if files, _ := filepath.Glob(filepath.Join(l.Dir.BackupDir(), "member_*")); len(files) > 0 {
			t.Fatalf("a refused run filed %v", files)
		}
	})

	put(5)
	// a dies with a damaged db; b is left running alone, without a quorum,
	// holding every write; c is stopped with older data.
	sh(t, l, a, "systemctl stop etcd && truncate -s 12288 /var/lib/etcd/member/snap/db")

	t.Run("status names each member's data and points to the freshest", func(t *testing.T) {
		out, err := cli(t, l, "status", l.Opts.Name)
		if err == nil {
			t.Fatal("status without a quorum exited 0")
		}
		requireAll(t, "status", out, "no quorum", "each member's own data", "damaged: etcdctl 3.4.23 snapshot status failed",
			b+" holds revision", "ahead of the newest backup snapshot_", "ezrestore plan "+l.Opts.Name+" --snapshot member:freshest")
	})

	var chosenRev int
	t.Run("plan chooses the higher of two readable members and names the damaged one", func(t *testing.T) {
		before := allStates(t, l)
		out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", "member:freshest")
		if err != nil {
			t.Fatalf("plan: %v", err)
		}
		m := regexp.MustCompile(`chosen: ` + regexp.QuoteMeta(b) + `, the highest revision \((\d+)\) of the 2 readable members; the others: ` + regexp.QuoteMeta(c) + ` at (\d+); (\d+) revisions ahead of the newest backup snapshot_`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("plan does not choose %s over %s with the reason:\n%s", b, c, out)
		}
		hi, _ := strconv.Atoi(m[1])
		lo, _ := strconv.Atoi(m[2])
		ahead, _ := strconv.Atoi(m[3])
		if hi <= lo || ahead < len(after) {
			t.Fatalf("chosen revision %d, other %d, ahead %d after %d writes", hi, lo, ahead, len(after))
		}
		chosenRev = hi
		requireAll(t, "the plan", out,
			a+" ", "damaged: etcdctl 3.4.23 snapshot status failed: unexpected fault address",
			"its API (etcd runs; the db is copied once it is stopped)  <- chosen",
			"restored with --skip-hash-check",
			"writes still in the member's WAL but not yet in its db are not in the copy",
			"stop etcd here before its db is read (it runs now, without a quorum)")
		// The damaged member, named: refused with the tool's error.
		refused(t, l, []string{"plan", l.Opts.Name, "--snapshot", "member:" + a},
			"--snapshot member:"+a+": the db of "+a+" cannot be used: damaged: etcdctl 3.4.23 snapshot status failed")
		// A member source does not resume: the copy is named instead.
		refused(t, l, []string{"restore", l.Opts.Name, "--snapshot", "member:freshest", "--from-step", "push snapshot", "--yes"},
			"cannot resume a run (--from-step)", "--snapshot member_<host>_<time>.db")
		requireUnchanged(t, l, before, "plan")
	})

	t.Run("a copy that cannot be made stops the run before the push, with the way on", func(t *testing.T) {
		// etcd on the chosen member refuses to be stopped: its db cannot be copied.
		sh(t, l, b, "mkdir -p /etc/systemd/system/etcd.service.d && printf '[Unit]\\nRefuseManualStop=yes\\n' > /etc/systemd/system/etcd.service.d/zz-refuse.conf && systemctl daemon-reload")
		defer sh(t, l, b, "rm -f /etc/systemd/system/etcd.service.d/zz-refuse.conf && systemctl daemon-reload")
		before := allStates(t, l)
		out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", "member:freshest", "--yes")
		if err == nil {
			t.Fatal("restore succeeded though etcd on the chosen member cannot be stopped")
		}
		requireAll(t, "the failure", out, "failed: ["+b+"]", `"copy member db"`, "The db of "+b+" was not copied",
			"ezrestore restore "+l.Opts.Name+" --snapshot member:freshest")
		if strings.Contains(out, "STEP [push snapshot]") {
			t.Errorf("the push started though the copy failed:\n%s", out)
		}
		requireUnchanged(t, l, before, "a restore whose copy failed")
	})

	t.Run("restore brings back every write made after the backup", func(t *testing.T) {
		out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", "member:freshest", "--yes")
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		requireAll(t, "the run", out, "STEP [copy member db]", fmt.Sprintf("revision %d", chosenRev), "(the same on the host); filed as ")
		requireHealthy(t, l)
		for _, h := range etcd {
			got := keys(t, l, h.Address)
			for _, k := range append(after, "/registry/pods/default/net-test3") {
				if !strings.Contains(got, k) {
					t.Fatalf("%s lacks %s after the restore:\n%s", h.Address, k, got)
				}
			}
		}
		files, _ := filepath.Glob(filepath.Join(l.Dir.BackupDir(), "member_"+b+"_*.db"))
		if len(files) != 1 {
			t.Fatalf("the copy is not filed once as member_%s_<time>.db: %v", b, files)
		}
		fi, err := os.Stat(files[0])
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("copy %s: %v, mode %v", files[0], err, fi.Mode())
		}
		side, err := os.ReadFile(files[0] + ".json")
		if err != nil || !strings.Contains(string(side), `"source_host": "`+b+`"`) || !strings.Contains(string(side), `"source_path": "/var/lib/etcd/member/snap/db"`) {
			t.Fatalf("sidecar: %v\n%s", err, side)
		}
		// The damaged member's data is set aside, not deleted.
		if n := setAside(t, l, a); n != 1 {
			t.Fatalf("%s: %d member.before-* dirs, want the damaged one set aside", a, n)
		}
	})
}
