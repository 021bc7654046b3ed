package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
)

func at(hour, min int) time.Time { return time.Date(2026, 11, 21, hour, min, 0, 0, time.Local) }

// backupDir lays out a kubeasz backup dir from the real snapshots:
// 12:00 before, 12:05 after, 12:10 damaged, snapshot.db = copy of 12:05 (no sidecar,
// as kubeasz's own ezctl backup leaves it).
func backupDir(t *testing.T, f *fixtures) string {
	t.Helper()
	dir := t.TempDir()
	cp := func(src, name string) {
		if err := etcdtest.CopyFile(src, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cp(f.before, BackupName(at(12, 0), 1))
	cp(f.after, BackupName(at(12, 5), 1))
	cp(damaged(t, f.after, "x", func(d []byte) []byte { d[len(d)/3] ^= 1; return d }), BackupName(at(12, 10), 1))
	cp(f.after, LatestName)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCatalog(t *testing.T) {
	f := needFixtures(t)
	dir := backupDir(t, f)
	entries, err := Catalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name+" "+e.Integrity)
	}
	want := []string{
		"snapshot_202611211210.db hash mismatch",
		"snapshot.db ok",
		"snapshot_202611211205.db ok",
		"snapshot_202611211200.db ok",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("catalog:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e := entries[1]; e.CopyOf != "snapshot_202611211205.db" || !e.Time.Equal(at(12, 5)) {
		t.Errorf("snapshot.db: copy_of %q time %v", e.CopyOf, e.Time)
	}
	if e := entries[3]; e.Revision != f.revBefore || e.Keys != 13 {
		t.Errorf("12:00: revision %d keys %d, want %d 13", e.Revision, e.Keys, f.revBefore)
	}
}

func TestResolveChecked(t *testing.T) {
	f := needFixtures(t)
	dir := backupDir(t, f)
	for _, tc := range []struct {
		spec, want, howHas string
	}{
		{"", LatestName, "snapshot.db"},
		{"latest", "snapshot_202611211205.db", "passed over damaged snapshot_202611211210.db (hash mismatch)"},
		{"before:" + at(12, 5).Format(time.RFC3339), "snapshot_202611211200.db", "newest backup before"},
		{"before:" + at(12, 6).UTC().Format(time.RFC3339), "snapshot_202611211205.db", "revision"},
		{"snapshot_202611211200.db", "snapshot_202611211200.db", "named on the command line"},
		{filepath.Join(dir, "snapshot_202611211205.db"), "snapshot_202611211205.db", "named on the command line"},
	} {
		e, how, err := ResolveChecked(dir, tc.spec)
		if err != nil {
			t.Errorf("ResolveChecked(%q): %v", tc.spec, err)
			continue
		}
		if e.Name != tc.want || filepath.Base(e.Path) != tc.want || !strings.Contains(how, tc.howHas) {
			t.Errorf("ResolveChecked(%q) = %s, %q; want %s, how with %q", tc.spec, e.Path, how, tc.want, tc.howHas)
		}
		// Checked, so a restore need not read the file again.
		if e.Integrity != IntegrityOK || e.Revision == 0 || e.SHA256 != fileSum(t, e.Path) {
			t.Errorf("ResolveChecked(%q): integrity %q revision %d sha256 %s", tc.spec, e.Integrity, e.Revision, e.SHA256)
		}
	}
	for _, spec := range []string{"before:" + at(11, 0).Format(time.RFC3339), "before:yesterday", "nope.db"} {
		if e, _, err := ResolveChecked(dir, spec); err == nil {
			t.Errorf("ResolveChecked(%q) = %s, want an error", spec, e.Path)
		}
	}
}

func TestAddBackupNeverOverwrites(t *testing.T) {
	f := needFixtures(t)
	dir := t.TempDir()
	var names []string
	for i := 0; i < 3; i++ {
		tmp := filepath.Join(dir, ".partial")
		if err := etcdtest.CopyFile(f.after, tmp); err != nil {
			t.Fatal(err)
		}
		p, err := AddBackup(dir, tmp, at(12, 5).Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(p))
	}
	want := "snapshot_202611211205.db snapshot_202611211205-2.db snapshot_202611211205-3.db"
	if strings.Join(names, " ") != want {
		t.Errorf("names %v, want %s", names, want)
	}
	if _, err := os.Stat(filepath.Join(dir, ".partial")); !os.IsNotExist(err) {
		t.Errorf("temp file left behind: %v", err)
	}
	entries, _ := List(dir)
	if entries[0].Name != "snapshot_202611211205-3.db" {
		t.Errorf("newest first: %s", entries[0].Name)
	}
}

func TestPrune(t *testing.T) {
	f := needFixtures(t)
	dir := t.TempDir()
	for _, m := range []int{0, 5, 10, 15} {
		p := filepath.Join(dir, BackupName(at(12, m), 1))
		if err := etcdtest.CopyFile(f.before, p); err != nil {
			t.Fatal(err)
		}
		if err := WriteSidecar(p, &Sidecar{Time: at(12, m), SHA256: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// snapshot.db copies the 12:05 backup (an operator restored it by hand).
	if err := RefreshLatest(dir, filepath.Join(dir, BackupName(at(12, 5), 1)), &Sidecar{Time: at(12, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := etcdtest.CopyFile(f.before, filepath.Join(dir, "before-upgrade.db")); err != nil {
		t.Fatal(err)
	}
	removed, err := Prune(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, " ") != "snapshot_202611211210.db snapshot_202611211200.db" {
		t.Errorf("removed %v", removed)
	}
	for _, keep := range []string{"snapshot_202611211215.db", "snapshot_202611211205.db", LatestName, "before-upgrade.db", "snapshot_202611211205.db.json"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("%s: %v", keep, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshot_202611211200.db.json")); !os.IsNotExist(err) {
		t.Errorf("sidecar of a pruned backup left: %v", err)
	}
	fi, _ := os.Stat(filepath.Join(dir, LatestName))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot.db mode %v", fi.Mode())
	}
	if _, err := Prune(dir, 0); err == nil {
		t.Error("keep 0 accepted")
	}
}

// A damaged file named on the command line is returned with its damage, not
// passed over: the operator chose it, the preflight reports it.
func TestResolveCheckedNamedDamaged(t *testing.T) {
	f := needFixtures(t)
	dir := backupDir(t, f)
	e, _, err := ResolveChecked(dir, "snapshot_202611211210.db")
	if err != nil {
		t.Fatal(err)
	}
	if e.Integrity != IntegrityHashMismatch || e.Intact() {
		t.Errorf("integrity %q", e.Integrity)
	}
}
