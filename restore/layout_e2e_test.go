package restore_test

// End-to-end tests of the storage layouts production etcd hosts use (issue
// 19): the WAL dir, the data dir or member/ the mount point of a filesystem
// of its own, or the WAL or data dir a symlink to a dir on another filesystem. One lab, its layout
// changed between subtests (the lab hosts mount tmpfs filesystems inside
// themselves). Each subtest restores and rolls back, and judges with the
// lab's own tools: etcdctl for the key and the cluster's shape, findmnt,
// readlink and stat for the disks, /proc/<etcd pid>/fd for where etcd's open
// files are.

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

const (
	layoutWal  = "/var/lib/etcd-wal"
	layoutData = lab.EtcdDataDir
)

// onEtcdHosts runs script on every etcd host at once (etcd stops and starts
// on all of them together: a member alone has no quorum).
func onEtcdHosts(t *testing.T, l *lab.Lab, script string) {
	t.Helper()
	hosts := l.EtcdHosts()
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := l.Exec(context.Background(), h.Address, "set -e\n"+script)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %v: %s", h.Address, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// relayout stops etcd everywhere, runs change (with etcd stopped), starts
// etcd again and waits for health.
func relayout(t *testing.T, l *lab.Lab, change string) {
	t.Helper()
	onEtcdHosts(t, l, "systemctl stop etcd\n"+change)
	onEtcdHosts(t, l, "systemctl start --no-block etcd")
	waitHealthy(t, l)
}

// moveOnto puts dir's contents onto a fresh tmpfs of size mounted at mnt
// (mnt may be dir itself); the mount's root gets owner etcd:etcd, mode 0750,
// so a restore that changed them shows.
func moveOnto(dir, mnt, size string) string {
	return fmt.Sprintf(`rm -rf /root/lay-copy && mkdir /root/lay-copy && cp -a %[1]s/. /root/lay-copy/
find %[1]s -mindepth 1 -delete
mkdir -p %[2]s && mount -t tmpfs -o size=%[3]s tmpfs %[2]s
cp -a /root/lay-copy/. %[2]s/ && rm -rf /root/lay-copy
chown etcd:etcd %[2]s && chmod 0750 %[2]s`, dir, mnt, size)
}

// moveBack undoes moveOnto: dir (a mount point or a symlink to src on the
// tmpfs at mnt) is a plain dir on the root filesystem again, holding src's
// contents.
func moveBack(dir, src, mnt string) string {
	return fmt.Sprintf(`rm -rf /root/lay-copy && mkdir /root/lay-copy && cp -a %[2]s/. /root/lay-copy/
if [ -L %[1]s ]; then rm %[1]s; else find %[1]s -mindepth 1 -delete; fi
umount %[3]s
mkdir -p %[1]s && cp -a /root/lay-copy/. %[1]s/ && rm -rf /root/lay-copy
chown root:root %[1]s && chmod 0700 %[1]s`, dir, src, mnt)
}

// dirShape is what must not change on a host: for each dir, whether it is
// a symlink and to what, the mount it is the root of, owner and mode.
func dirShape(t *testing.T, l *lab.Lab, addr string, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, d := range dirs {
		fmt.Fprintf(&b, "echo %[1]s: link=$(readlink %[1]s) mount=$(findmnt -n -o TARGET,FSTYPE --mountpoint $(readlink -f %[1]s)) $(stat -L -c '%%u:%%g %%a dev=%%d' %[1]s);", d)
	}
	return sh(t, l, addr, b.String())
}

// openOn checks that etcd's open files whose path ends in suffix all sit on
// the filesystem mounted at mount (device and findmnt), and that there is one.
func openOn(t *testing.T, l *lab.Lab, addr, suffix, mount string) {
	t.Helper()
	out := sh(t, l, addr, fmt.Sprintf(`p=$(systemctl show -p MainPID --value etcd); want=$(stat -L -c %%d %[2]s)
n=0; for fd in /proc/$p/fd/*; do f=$(readlink "$fd"); case $f in *%[1]s) n=$((n+1)); d=$(stat -L -c %%d "$fd"); m=$(findmnt -n -o TARGET -T "$f"); echo "$f dev=$d want=$want mount=$m";; esac; done; echo "open=$n"`, suffix, mount))
	if strings.HasSuffix(out, "open=0") {
		t.Fatalf("%s: etcd has no open file ending in %s:\n%s", addr, suffix, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "open=") {
			continue
		}
		var f, dev, want, m string
		fields := strings.Fields(line)
		if len(fields) != 4 {
			t.Fatalf("%s: unreadable %q", addr, line)
		}
		f, dev, want, m = fields[0], fields[1][4:], fields[2][5:], fields[3][6:]
		if dev != want || m != mount {
			t.Errorf("%s: etcd's open %s is on dev %s mounted at %s, want dev %s of %s", addr, f, dev, m, want, mount)
		}
	}
}

func getKey(t *testing.T, l *lab.Lab, key string) string {
	t.Helper()
	return etcdctl(t, l, l.EtcdHosts()[0].Address, "get --print-value-only "+key)
}

func TestLayouts(t *testing.T) {
	t0 := time.Now()
	l := labtest.Up(t, lab.Options{Name: "layouts-e2e", Nodes: -1, EtcdWALDir: layoutWal})
	name := l.Opts.Name
	hosts := l.EtcdHosts()
	first := hosts[0].Address

	// restoreAndRollBack restores snapshot snap (which holds /layouts/k at
	// the value inSnap, the live cluster at live), checks, rolls back, checks,
	// and prunes the run. check runs on every host after each of the two.
	restoreAndRollBack := func(t *testing.T, snap, inSnap, live string, dirs []string, check func(addr string)) {
		t.Helper()
		before := map[string]string{}
		for _, h := range hosts {
			before[h.Address] = dirShape(t, l, h.Address, dirs...)
		}
		same := func(when string) {
			t.Helper()
			requireHealthy(t, l)
			for _, h := range hosts {
				if got := dirShape(t, l, h.Address, dirs...); got != before[h.Address] {
					t.Errorf("%s: %s changed the disks:\nbefore: %s\nafter:  %s", h.Address, when, before[h.Address], got)
				}
				check(h.Address)
			}
		}
		out, err := cli(t, l, "restore", name, "--snapshot", snap, "--yes")
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		run := regexp.MustCompile(`restores/([0-9TZ]+)`).FindStringSubmatch(out)
		if run == nil {
			t.Fatalf("restore names no run record")
		}
		if v := getKey(t, l, "/layouts/k"); v != inSnap {
			t.Fatalf("after the restore /layouts/k is %q, want the snapshot's %q", v, inSnap)
		}
		same("the restore")
		if _, err := cli(t, l, "rollback", name, "--yes"); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		if v := getKey(t, l, "/layouts/k"); v != live {
			t.Fatalf("after the rollback /layouts/k is %q, want the old data's %q", v, live)
		}
		same("the rollback")
		// status and prune know where this layout keeps the run's data.
		st, err := cli(t, l, "status", name)
		if err != nil || !strings.Contains(st, run[1]) {
			t.Fatalf("status does not list run %s's leftovers: %v", run[1], err)
		}
		if _, err := cli(t, l, "prune", name, "--run", run[1], "--yes"); err != nil {
			t.Fatalf("prune: %v", err)
		}
		for _, h := range hosts {
			if left := sh(t, l, h.Address, "find -H "+layoutData+" "+layoutWal+" "+layoutWal+".before-"+run[1]+" -maxdepth 3 -name '*"+run[1]+"*' 2>/dev/null || true"); left != "" {
				t.Errorf("%s: prune left %s", h.Address, left)
			}
		}
	}

	etcdctl(t, l, first, "put /layouts/k in-snapshot")
	saveSnapshot(t, l, "layouts.db")
	etcdctl(t, l, first, "put /layouts/k live")

	t.Run("wal-mount", func(t *testing.T) {
		relayout(t, l, moveOnto(layoutWal, layoutWal, "180m"))
		defer relayout(t, l, moveBack(layoutWal, layoutWal, layoutWal))

		// Too small for the new WAL beside the old one (about 122 MiB of the
		// 180 MiB hold the live WAL and etcd's next segment): refused in
		// preflight, naming host, dir, filesystem and numbers; nothing changes.
		state := map[string]string{}
		for _, h := range hosts {
			state[h.Address] = hostState(t, l, h.Address) + sh(t, l, h.Address, "ls -la "+layoutWal)
		}
		out, err := cli(t, l, "restore", name, "--snapshot", "layouts.db", "--yes")
		if err == nil || !strings.Contains(out, "Nothing was changed") {
			t.Fatalf("a restore onto a WAL filesystem too small was not refused: %v", err)
		}
		for _, h := range hosts {
			if !regexp.MustCompile(regexp.QuoteMeta(h.Address) + `.*\n?.*the tmpfs filesystem on ` + layoutWal + ` \(wal dir ` + layoutWal + `\): [0-9.]+ MiB free, needs 80\.0 MiB \(new WAL segment 64\.0 MiB, margin 16\.0 MiB\)`).MatchString(out) {
				t.Errorf("the refusal does not name %s, the WAL filesystem and the numbers", h.Address)
			}
			if got := hostState(t, l, h.Address) + sh(t, l, h.Address, "ls -la "+layoutWal); got != state[h.Address] {
				t.Fatalf("%s: a refused restore changed the host:\nbefore:\n%s\nafter:\n%s", h.Address, state[h.Address], got)
			}
		}

		onEtcdHosts(t, l, "mount -o remount,size=600m "+layoutWal)
		out, err = cli(t, l, "plan", name, "--snapshot", "layouts.db")
		if err != nil || !strings.Contains(out, "wal "+layoutWal+": mount point of its own tmpfs filesystem on "+layoutWal) ||
			!strings.Contains(out, layoutWal+"/.before-etcd-restore-") {
			t.Fatalf("the plan does not show the WAL mount and where its contents go: %v", err)
		}
		restoreAndRollBack(t, "layouts.db", "in-snapshot", "live", []string{layoutWal, layoutData}, func(addr string) {
			openOn(t, l, addr, ".wal", layoutWal)
		})
	})

	t.Run("data-mount", func(t *testing.T) {
		relayout(t, l, moveOnto(layoutData, layoutData, "300m"))
		defer relayout(t, l, moveBack(layoutData, layoutData, layoutData))
		restoreAndRollBack(t, "layouts.db", "in-snapshot", "live", []string{layoutWal, layoutData, layoutData + "/member"}, func(addr string) {
			openOn(t, l, addr, "/member/snap/db", layoutData)
			openOn(t, l, addr, ".wal", "/")
		})
	})

	t.Run("member-mount", func(t *testing.T) {
		member := layoutData + "/member"
		relayout(t, l, moveOnto(member, member, "300m"))
		defer relayout(t, l, moveBack(member, member, member))
		restoreAndRollBack(t, "layouts.db", "in-snapshot", "live", []string{layoutWal, layoutData, member}, func(addr string) {
			openOn(t, l, addr, "/member/snap/db", member)
			openOn(t, l, addr, ".wal", "/")
		})
	})

	t.Run("wal-symlink", func(t *testing.T) {
		const mnt = "/mnt/fastwal"
		relayout(t, l, moveOnto(layoutWal, mnt, "600m")+"\nmkdir "+mnt+"/wal && find "+mnt+" -mindepth 1 -maxdepth 1 ! -name wal -exec mv -t "+mnt+"/wal -- {} +"+
			"\nchown etcd:etcd "+mnt+"/wal && chmod 0750 "+mnt+"/wal && rmdir "+layoutWal+" && ln -s "+mnt+"/wal "+layoutWal)
		defer relayout(t, l, moveBack(layoutWal, mnt+"/wal", mnt))
		restoreAndRollBack(t, "layouts.db", "in-snapshot", "live", []string{layoutWal, layoutData}, func(addr string) {
			if got := sh(t, l, addr, "readlink "+layoutWal); got != mnt+"/wal" {
				t.Errorf("%s: %s now leads to %q", addr, layoutWal, got)
			}
			openOn(t, l, addr, ".wal", mnt)
		})

		// A WAL symlink that leads nowhere (its disk not mounted) is refused
		// in preflight, naming host, dir and where it leads.
		onEtcdHosts(t, l, "ln -sfn /mnt/not-mounted/wal "+layoutWal)
		out, err := cli(t, l, "plan", name, "--snapshot", "layouts.db")
		onEtcdHosts(t, l, "ln -sfn "+mnt+"/wal "+layoutWal)
		for _, h := range hosts {
			if err == nil || !regexp.MustCompile(regexp.QuoteMeta(h.Address)+`: (.*\n)*.*wal dir `+layoutWal+` is a symlink that leads nowhere \(/mnt/not-mounted/wal\)`).MatchString(out) {
				t.Errorf("a WAL symlink leading nowhere on %s was not refused: %v", h.Address, err)
			}
		}
	})

	t.Run("data-symlink", func(t *testing.T) {
		const mnt = "/mnt/fastdata"
		relayout(t, l, moveOnto(layoutData, mnt, "300m")+"\nmkdir "+mnt+"/etcd && find "+mnt+" -mindepth 1 -maxdepth 1 ! -name etcd -exec mv -t "+mnt+"/etcd -- {} +"+
			"\nchown etcd:etcd "+mnt+"/etcd && chmod 0750 "+mnt+"/etcd && rmdir "+layoutData+" && ln -s "+mnt+"/etcd "+layoutData)
		restoreAndRollBack(t, "layouts.db", "in-snapshot", "live", []string{layoutWal, layoutData, layoutData + "/member"}, func(addr string) {
			if got := sh(t, l, addr, "readlink "+layoutData); got != mnt+"/etcd" {
				t.Errorf("%s: %s now leads to %q", addr, layoutData, got)
			}
			openOn(t, l, addr, "/member/snap/db", mnt)
		})
	})
	t.Logf("TestLayouts took %v (lab up included)", time.Since(t0))
}
