package steps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/etcdhost"
)

// The swap script runs in a real sh on real dirs, with a hostile dir name.
func TestSwapScriptKeepsOldDataAndIsIdempotent(t *testing.T) {
	base := filepath.Join(t.TempDir(), `d a"t$(touch pwned)'a`)
	restored, live, aside := base+"/etcdhost.Stage/member", base+"/member", base+"/member.before-T"
	for _, d := range []string{restored, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(restored+"/new", nil, 0o600)
	os.WriteFile(live+"/old", nil, 0o600)
	run := func() (string, error) {
		cmd := exec.Command("sh", "-c", swapScript(restored, live, aside, `"restore snapshot"`))
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if _, e := os.Stat(filepath.Join(cmd.Dir, "pwned")); e == nil {
			t.Fatal("a path ran as a command")
		}
		return string(out), err
	}
	out, err := run()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := os.Stat(live + "/new"); err != nil {
		t.Fatalf("restored data not in place: %s", out)
	}
	if _, err := os.Stat(aside + "/old"); err != nil {
		t.Fatalf("old data not kept aside: %s", out)
	}
	out, err = run()
	if err != nil || !strings.Contains(out, "already swapped") {
		t.Fatalf("second run: %v %s", err, out)
	}
	// A restored dir waiting while both live and aside exist: refuse, touch nothing.
	os.MkdirAll(restored, 0o700)
	out, err = run()
	if err == nil || !strings.Contains(out, "refusing to guess") {
		t.Fatalf("want refusal, got %v %s", err, out)
	}
}

// A WAL dir kept in place (here a symlink to the dir that holds it, as to
// another disk): the swap moves its contents, never the dir or the link, and
// leaves alone what is not etcd's (lost+found, other runs' dirs); the
// put-back moves them back the same way. Real sh, real dirs, hostile names.
func TestSwapContentsKeepsTheDirAndPutsBack(t *testing.T) {
	base := filepath.Join(t.TempDir(), `w a"l$(touch pwned)'`)
	target := base + "/disk/wal"
	live := base + "/etcd-wal"
	for _, d := range []string{target + "/lost+found", target + "/.before-older", target + "/.ezrestore-T"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, live); err != nil {
		t.Fatal(err)
	}
	restored, aside, rolled := live+"/.ezrestore-T", live+"/.before-T", live+"/.restored-T"
	os.WriteFile(target+"/old.wal", []byte("old"), 0o600)
	os.WriteFile(target+"/.hidden-old", nil, 0o600)
	os.WriteFile(restored+"/new.wal", []byte("new"), 0o600)
	run := func(script string) (string, error) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if _, e := os.Stat(filepath.Join(cmd.Dir, "pwned")); e == nil {
			t.Fatal("a path ran as a command")
		}
		return string(out), err
	}
	has := func(p, want string) {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q %v, want %q", p, b, err, want)
		}
	}
	kept := func() {
		t.Helper()
		if fi, err := os.Lstat(live); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s is no longer a symlink: %v", live, err)
		}
		for _, d := range []string{target + "/lost+found", target + "/.before-older"} {
			if _, err := os.Stat(d); err != nil {
				t.Fatalf("%s moved: %v", d, err)
			}
		}
	}
	swap := swapContentsScript(restored, live, aside, `"restore snapshot"`)
	out, err := run(swap)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	has(target+"/new.wal", "new")
	has(aside+"/old.wal", "old")
	if _, err := os.Stat(aside + "/.hidden-old"); err != nil {
		t.Fatalf("a hidden file of etcd's was not set aside: %s", out)
	}
	if _, err := os.Stat(restored); err == nil {
		t.Fatalf("the emptied staging dir is still there")
	}
	kept()
	if out, err = run(swap); err != nil || !strings.Contains(out, "already swapped") {
		t.Fatalf("second run: %v %s", err, out)
	}

	back := putBackContentsScript(live, aside, rolled)
	if out, err = run(back); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	has(target+"/old.wal", "old")
	has(rolled+"/new.wal", "new")
	if _, err := os.Stat(aside); err == nil {
		t.Fatal("the emptied set-aside dir is still there")
	}
	kept()
	if out, err = run(back); err != nil || !strings.Contains(out, "already put back") {
		t.Fatalf("second put-back: %v %s", err, out)
	}

	// A swap cut off between its two moves (data in the live dir while both
	// the set-aside and the restored dirs exist) is refused, nothing moves.
	os.MkdirAll(aside, 0o700)
	os.MkdirAll(restored, 0o700)
	os.WriteFile(restored+"/new.wal", []byte("new"), 0o600)
	out, err = run(swap)
	if err == nil || !strings.Contains(out, "refusing to guess") {
		t.Fatalf("want refusal, got %v %s", err, out)
	}
	has(target+"/old.wal", "old")
	has(restored+"/new.wal", "new")
}

// A rename that fails stops the swap script: the next rename never runs on
// top of it.
func TestSwapScriptStopsAtAFailedRename(t *testing.T) {
	base := t.TempDir()
	restored, live, aside := base+"/restored", base+"/live", base+"/ro/aside"
	for _, d := range []string{restored, live, base + "/ro"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getuid() == 0 {
		// root renames into a read-only dir: make the target a file's child.
		aside = base + "/file/aside"
		os.WriteFile(base+"/file", nil, 0o600)
	} else {
		os.Chmod(base+"/ro", 0o500)
	}
	out, err := exec.Command("sh", "-c", swapScript(restored, live, aside, "x")).CombinedOutput()
	if err == nil || strings.Contains(string(out), "restored data now at") {
		t.Fatalf("a failed set-aside went on: %v %s", err, out)
	}
	if _, err := os.Stat(restored); err != nil {
		t.Fatalf("the restored dir moved after the set-aside failed: %v", err)
	}
}

// A rollback refuses when a dir the swap kept in place is a plain dir now
// (someone unmounted it), or the other way round.
func TestPutBackRefusesAChangedLayout(t *testing.T) {
	sa := SetAsideHost{Member: "/var/lib/etcd/member", Wal: "/wal", WalInPlace: true}
	f := &etcdhost.EtcdFacts{Config: &etcdhost.EtcdConfig{DataDir: "/var/lib/etcd", WalDir: "/wal"}, Layout: []etcdhost.DirLayout{
		{Role: "member", Path: "/var/lib/etcd/member", Exists: true},
		{Role: "wal", Path: "/wal", Exists: true, MountPoint: true, FSType: "xfs"},
	}}
	if err := layoutChanged(sa, f, "R1"); err != nil {
		t.Fatalf("same layout refused: %v", err)
	}
	f.Layout[1].MountPoint = false
	err := layoutChanged(sa, f, "R1")
	if err == nil || !strings.Contains(err.Error(), "/wal was a mount point or a symlink") || !strings.Contains(err.Error(), "run R1") {
		t.Fatalf("an unmounted WAL dir: %v", err)
	}
	f.Layout[1].MountPoint = true
	f.Layout[0].Symlink, f.Layout[0].Target = true, "/disk/member"
	if err := layoutChanged(sa, f, "R1"); err == nil || !strings.Contains(err.Error(), "/var/lib/etcd/member was a plain dir") {
		t.Fatalf("a member dir made a symlink since: %v", err)
	}
}
