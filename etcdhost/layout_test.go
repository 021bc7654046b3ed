package etcdhost

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/internal/testkit/localconn"
	"github.com/ezrestore/ezrestore/inventory"
)

// otherFS is a dir on another filesystem than t.TempDir(), or a skip.
func otherFS(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "layout-test-")
	if err != nil {
		t.Skip("no /dev/shm to stand for another disk:", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// The layout probe, run by a real sh on real dirs: a WAL dir that is a
// symlink to another filesystem is seen as such (and kept in place), a
// plain data dir is not, and the dirs not made yet are reported missing.
func TestLayoutScriptReadsSymlinksAndFilesystems(t *testing.T) {
	dir := t.TempDir()
	other := otherFS(t)
	data := filepath.Join(dir, "etcd it's $(touch PWNED)")
	localconn.MkFile(t, data+"/member/snap/db", 10)
	target := filepath.Join(other, "wal disk")
	localconn.MkFile(t, target+"/0.wal", 10)
	if err := os.Chmod(target, 0o750); err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(dir, "etcd-wal")
	if err := os.Symlink(target, wal); err != nil {
		t.Fatal(err)
	}
	f := &EtcdFacts{Host: "h1", Config: &EtcdConfig{DataDir: data, WalDir: wal}}
	cmd := exec.Command("sh", "-c", LayoutScript(f))
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
		t.Fatal("a path ran as a command")
	}
	ls, err := ParseLayout(string(out), f)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f.Layout = ls
	d, _ := f.LayoutOf("data")
	w, _ := f.LayoutOf("wal")
	st, _ := f.LayoutOf("staging")
	if !d.Exists || d.Symlink || d.MountPoint || d.InPlace() || d.Mode != "700" || d.Free <= 0 || d.Size < d.Free {
		t.Errorf("data dir: %+v", d)
	}
	if !w.Exists || !w.Symlink || w.Target != target || !w.InPlace() || w.Mode != "750" || w.Dev == d.Dev {
		t.Errorf("WAL dir (a symlink to another filesystem): %+v (data dir on dev %s)", w, d.Dev)
	}
	if w.FSType != "" && w.FSType != "tmpfs" {
		t.Errorf("WAL dir's filesystem type %q, want tmpfs (/dev/shm)", w.FSType)
	}
	if st.Exists || st.Path != StagingRoot(f) {
		t.Errorf("staging dir not made yet: %+v", st)
	}
	if !f.WalInPlace() || len(LayoutProblems(f)) != 0 {
		t.Errorf("WalInPlace %v, problems %v", f.WalInPlace(), LayoutProblems(f))
	}
	stage := StageFor("tok", f)
	if !stage.WalInPlace || stage.Wal != wal+"/.ezrestore-tok" || stage.AsideWal != wal+"/.before-tok" || stage.RestoredWal != wal+"/.restored-tok" {
		t.Errorf("stage of a WAL dir kept in place: %+v", stage)
	}
	for _, l := range LayoutLines(f) {
		if strings.Contains(l, "wal ") && !strings.Contains(l, "symlink to "+target) {
			t.Errorf("plan line: %s", l)
		}
	}

	// The space probe measures a symlinked WAL dir on its target's filesystem.
	hs, err := ProbeSpace(context.Background(), localconn.Conn{H: &inventory.Host{Name: "h1"}}, f, false)
	if err != nil {
		t.Fatal(err)
	}
	if fs, _ := hs.FSOf("wal"); fs.Dev != w.Dev {
		t.Errorf("space probe: WAL on dev %s, its target is on %s", fs.Dev, w.Dev)
	}
}

func TestParseLayoutMountPoints(t *testing.T) {
	f := &EtcdFacts{Config: &EtcdConfig{DataDir: "/var/lib/etcd", WalDir: "/var/lib/etcd-wal"}}
	out := strings.Join([]string{
		"L\tdata\t0\t\t1\t/var/lib/etcd\t2049\t0\t0\t700\troot\troot\t4096\t1000\t500\t2049\t/\text4\t/dev/vda1\trw,relatime",
		"L\tmember\t0\t\t1\t/var/lib/etcd/member\t2049\t0\t0\t700\troot\troot\t4096\t1000\t500\t2049\t/\text4\t/dev/vda1\trw",
		"L\tstaging\t0\t\t0",
		// A bind mount of the same filesystem: the device does not change, findmnt tells.
		"L\twal\t0\t\t1\t/var/lib/etcd-wal\t2049\t998\t998\t750\tetcd\tetcd\t4096\t100\t50\t2049\t/var/lib/etcd-wal\text4\t/dev/vda1[/wal]\trw",
	}, "\n")
	ls, err := ParseLayout(out, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Layout = ls
	w, _ := f.LayoutOf("wal")
	if !w.MountPoint || !f.WalInPlace() || w.Owner != "etcd" || w.UID != 998 || w.Size != 409600 || w.Free != 204800 {
		t.Errorf("wal: %+v", w)
	}
	if d, _ := f.LayoutOf("data"); d.MountPoint || d.InPlace() {
		t.Errorf("data: %+v", d)
	}
	// Without findmnt a device change still tells a mount point.
	ls, err = ParseLayout(strings.Replace(out, "2049\t/var/lib/etcd-wal\text4\t/dev/vda1[/wal]\trw", "2049\t-", 1), f)
	if err != nil {
		t.Fatal(err)
	}
	if ls[3].MountPoint {
		t.Errorf("no findmnt, same device: %+v", ls[3])
	}
	if _, err := ParseLayout(strings.Replace(out, "\t700\t", "\tx\t", 1), f); err == nil {
		t.Error("an unreadable mode was accepted")
	}
	if _, err := ParseLayout("L\tdata\t0\t\t0\n", f); err == nil {
		t.Error("a probe that printed nothing for member/ was accepted")
	}
}

// The layouts the restore cannot keep as they are are refused, naming the
// dir and what it is.
func TestLayoutProblems(t *testing.T) {
	base := func() []DirLayout {
		return []DirLayout{
			{Role: "data", Path: "/var/lib/etcd", Exists: true, Dev: "1"},
			{Role: "member", Path: "/var/lib/etcd/member", Exists: true, Dev: "1"},
			{Role: "staging", Path: "/var/lib/etcd/.ezrestore"},
			{Role: "member/wal", Path: "/var/lib/etcd/member/wal", Exists: true, Dev: "1"},
		}
	}
	f := &EtcdFacts{Config: &EtcdConfig{DataDir: "/var/lib/etcd"}, Layout: base()}
	if ps := LayoutProblems(f); len(ps) != 0 {
		t.Fatalf("plain dirs refused: %v", ps)
	}
	cases := []struct {
		change func(ls []DirLayout)
		want   string
	}{
		{func(ls []DirLayout) { ls[3].Symlink, ls[3].Target = true, "/nvme/wal" }, "WAL dir /var/lib/etcd/member/wal inside member/ is a symlink to /nvme/wal"},
		{func(ls []DirLayout) { ls[0].Symlink, ls[0].Exists, ls[0].Target = true, false, "/gone" }, "data dir /var/lib/etcd is a symlink that leads nowhere (/gone)"},
		{func(ls []DirLayout) { ls[0].ReadOnly, ls[0].FSType, ls[0].Mount = true, "ext4", "/var/lib/etcd" }, "read-only filesystem (ext4 on /var/lib/etcd)"},
	}
	for _, c := range cases {
		f.Layout = base()
		c.change(f.Layout)
		ps := LayoutProblems(f)
		if len(ps) != 1 || !strings.Contains(ps[0], c.want) {
			t.Errorf("got %q, want one problem with %q", ps, c.want)
		}
	}
	// member/ a mount point of its own: kept in place, the restore writes
	// inside it, and the space check counts its filesystem.
	f.Layout = base()
	f.Layout[1].MountPoint, f.Layout[1].FSType, f.Layout[1].Dev, f.Layout[1].Free = true, "xfs", "9", 1<<30
	if ps := LayoutProblems(f); len(ps) != 0 || !f.MemberInPlace() {
		t.Errorf("member mount point: problems %v, in place %v", ps, f.MemberInPlace())
	}
	st := StageFor("tok", f)
	if !st.MemberInPlace || st.Data != "/var/lib/etcd/member/.ezrestore-tok" || st.Aside != "/var/lib/etcd/member/.before-tok" || st.Restored != "/var/lib/etcd/member/.restored-tok" {
		t.Errorf("stage of a member dir kept in place: %+v", st)
	}
	hs := &HostSpace{FS: []FSSpace{{Role: "data", Dev: "1", Free: 1 << 30}, {Role: "staging", Dev: "1", Free: 1 << 30}, {Role: "member", Dev: "9", Free: 1 << 30}}}
	for _, n := range SpaceNeeded(f, 1<<20, hs) {
		if n.What != "staged snapshot" && n.Role != "member" {
			t.Errorf("with member/ kept in place, %s lands on the %s filesystem", n.What, n.Role)
		}
	}
	f.Layout = nil
	if ps := LayoutProblems(f); len(ps) != 1 || !strings.Contains(ps[0], "could not be read") {
		t.Errorf("unread layout: %v", ps)
	}
}

// The put-back command printed for the operator, run by a real sh (a
// stand-in systemctl on PATH): for dirs kept in place it moves contents
// back and the restored ones aside, inside each dir, and leaves the
// symlinks as they are.
func TestPutBackCommandKeepsDirsInPlace(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin+"/systemctl", []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "etcd")
	disk := filepath.Join(dir, "disk")
	for _, d := range []string{data, disk + "/member", disk + "/wal"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	member, wal := data+"/member", filepath.Join(dir, "etcd-wal")
	if err := os.Symlink(disk+"/member", member); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(disk+"/wal", wal); err != nil {
		t.Fatal(err)
	}
	f := &EtcdFacts{Config: &EtcdConfig{DataDir: data, WalDir: wal}, Layout: []DirLayout{
		{Role: "member", Path: member, Exists: true, Symlink: true, Target: disk + "/member"},
		{Role: "wal", Path: wal, Exists: true, Symlink: true, Target: disk + "/wal"},
	}}
	st := StageFor("tok", f)
	// As the swap leaves it: the restored data live, the old set aside inside.
	localconn.MkFile(t, st.Aside+"/snap/db", 1)
	localconn.MkFile(t, member+"/snap/db.new", 1)
	localconn.MkFile(t, st.AsideWal+"/old.wal", 1)
	localconn.MkFile(t, wal+"/new.wal", 1)
	cmd := exec.Command("sh", "-c", PutBackCommand(st, "tok"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s\n%s", err, out, PutBackCommand(st, "tok"))
	}
	for _, p := range []string{member + "/snap/db", st.Restored + "/snap/db.new", wal + "/old.wal", st.RestoredWal + "/new.wal"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after the put-back: %v", err)
		}
	}
	for _, p := range []string{st.Aside, st.AsideWal, member + "/snap/db.new", wal + "/new.wal"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("after the put-back %s is still there", p)
		}
	}
	for _, l := range []string{member, wal} {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink", l)
		}
	}
}

// The check after the swap fails, naming the dir and both readings, when a
// dir's owner or mode differ from preflight's, or a symlink leads elsewhere;
// a dir the swap replaced gets the old owner and mode first.
func TestKeepLayoutScript(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "disk")
	other := filepath.Join(dir, "other")
	link := filepath.Join(dir, "wal")
	for _, d := range []string{target, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	st := func(p string) (dev, uid, gid string) {
		out, err := exec.Command("stat", "-L", "-c", "%d %u %g", p).Output()
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(out))
		return f[0], f[1], f[2]
	}
	dev, uid, gid := st(link)
	u, _ := strconv.Atoi(uid)
	g, _ := strconv.Atoi(gid)
	d := DirLayout{Role: "wal", Path: link, Exists: true, Symlink: true, Target: target, Dev: dev, UID: u, GID: g, Mode: "700"}
	run := func(script string) (string, error) {
		out, err := exec.Command("sh", "-c", script).CombinedOutput()
		return string(out), err
	}
	if out, err := run(KeepLayoutScript(d, false)); err != nil || !strings.Contains(out, "layout kept: wal "+link) {
		t.Fatalf("unchanged dir: %v %s", err, out)
	}
	d.Mode = "750"
	if out, err := run(KeepLayoutScript(d, false)); err == nil || !strings.Contains(out, "the layout of "+link+" changed") {
		t.Fatalf("a changed mode passed: %v %s", err, out)
	}
	d.Mode = "700"
	os.Remove(link)
	os.Symlink(other, link)
	if out, err := run(KeepLayoutScript(d, false)); err == nil || !strings.Contains(out, "no longer a symlink to "+target) {
		t.Fatalf("a symlink leading elsewhere passed: %v %s", err, out)
	}
	// Replaced by a rename: the old owner and mode are given to the new dir.
	plain := filepath.Join(dir, "member")
	os.MkdirAll(plain, 0o755)
	d = DirLayout{Role: "member", Path: plain, Exists: true, Dev: dev, UID: u, GID: g, Mode: "700"}
	if out, err := run(KeepLayoutScript(d, true)); err != nil {
		t.Fatalf("replaced dir: %v %s", err, out)
	}
	if fi, _ := os.Stat(plain); fi.Mode().Perm() != 0o700 {
		t.Fatalf("the replaced dir has mode %v, want the old 0700", fi.Mode().Perm())
	}
}
