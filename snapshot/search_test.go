package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// touch makes a file whose content List never reads.
func touch(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func targetNames(ts []Target) string {
	var names []string
	for _, t := range ts {
		names = append(names, filepath.Base(t.Path)+" "+t.Time.Format("15:04"))
	}
	return strings.Join(names, ", ")
}

func TestBackupTargets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		copyOf string // snapshot.db's sidecar; "" = no sidecar
		want   string
	}{
		{"copy of a listed backup is left out", "snapshot_202611211205.db",
			"snapshot_202611211205.db 12:05, snapshot_202611211200.db 12:00"},
		// Its backup was deleted by hand: snapshot.db is then the only copy of that data.
		{"copy of a missing backup is searched", "snapshot_202611211210.db",
			"snapshot.db 12:10, snapshot_202611211205.db 12:05, snapshot_202611211200.db 12:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			touch(t, dir, BackupName(at(12, 0), 1))
			touch(t, dir, BackupName(at(12, 5), 1))
			touch(t, dir, LatestName)
			touch(t, dir, "notes.txt")
			p := filepath.Join(dir, LatestName)
			if err := WriteSidecar(p, &Sidecar{CopyOf: tc.copyOf, Time: at(12, 10)}); err != nil {
				t.Fatal(err)
			}
			got, err := BackupTargets(dir)
			if err != nil {
				t.Fatal(err)
			}
			if targetNames(got) != tc.want {
				t.Errorf("targets %s\nwant    %s", targetNames(got), tc.want)
			}
		})
	}
	empty := t.TempDir()
	touch(t, empty, "notes.txt")
	if _, err := BackupTargets(empty); err == nil || !strings.Contains(err.Error(), "no snapshots in "+empty) {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := BackupTargets(filepath.Join(empty, "absent")); err == nil {
		t.Error("a missing dir is not an error")
	}
}

func TestFindAll(t *testing.T) {
	f := needFixtures(t)
	notEtcd := filepath.Join(t.TempDir(), "notes.db")
	if err := os.WriteFile(notEtcd, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	taken := at(12, 0)
	targets := []Target{{Path: f.before, Time: taken}, {Path: f.after}, {Path: notEtcd}}
	var got []FindResult
	tally := FindAll(targets, "net-test3", func(r FindResult) { got = append(got, r) })
	if want := (FindTally{Pattern: "net-test3", Searched: 3, Found: 1, Failed: 1}); tally != want {
		t.Errorf("tally %+v, want %+v", tally, want)
	}
	if len(got) != 3 {
		t.Fatalf("%d results reported, want 3", len(got))
	}
	if r := got[0]; r.File != f.before || r.Time == nil || !r.Time.Equal(taken) || r.Revision != f.revBefore ||
		len(r.Matches) != 1 || r.Matches[0].Key != "/registry/pods/default/net-test3" || r.Error != "" {
		t.Errorf("before: %+v", r)
	}
	if r := got[1]; r.File != f.after || r.Time != nil || r.Revision != f.revAfter || r.Matches == nil || len(r.Matches) != 0 {
		t.Errorf("after: %+v", r)
	}
	if r := got[2]; r.File != notEtcd || !strings.Contains(r.Error, notEtcd) || r.Matches == nil {
		t.Errorf("not etcd: %+v", r)
	}
}

func TestFindTallyStatus(t *testing.T) {
	for _, tc := range []struct {
		tally  FindTally
		code   int
		errHas string
	}{
		{FindTally{Pattern: "web", Searched: 3, Found: 1}, StatusOK, ""},
		{FindTally{Pattern: "web", Searched: 3}, StatusProblem, `no snapshot holds a live key matching "web"`},
		{FindTally{Pattern: "web", Searched: 3, Found: 2, Failed: 1}, StatusUnreadable, "1 of 3 snapshots could not be read"},
		{FindTally{Pattern: "web", Searched: 1, Failed: 1}, StatusUnreadable, "1 of 1 snapshots could not be read"},
	} {
		code, err := tc.tally.Status()
		if code != tc.code || (err == nil) != (tc.errHas == "") || err != nil && !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%+v: status %d %v, want %d %q", tc.tally, code, err, tc.code, tc.errHas)
		}
	}
}

func TestInspectStatus(t *testing.T) {
	f := needFixtures(t)
	badTrailer := damaged(t, f.after, "bad-trailer.db", func(d []byte) []byte { d[len(d)-1] ^= 1; return d })
	notEtcd := damaged(t, f.after, "text.db", func([]byte) []byte { return []byte("not a database\n") })
	for _, tc := range []struct {
		path   string
		code   int
		errHas string
	}{
		{f.after, StatusOK, ""},
		{f.noTrailer, StatusOK, ""},
		{badTrailer, StatusProblem, badTrailer + ": the sha256 trailer does not match the content"},
		{notEtcd, StatusProblem, notEtcd},
	} {
		code, err := InspectStatus(Inspect(tc.path))
		if code != tc.code || (err == nil) != (tc.errHas == "") || err != nil && !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: status %d %v, want %d %q", filepath.Base(tc.path), code, err, tc.code, tc.errHas)
		}
	}
}

func TestCatalogStatus(t *testing.T) {
	entries := []Entry{
		{Name: "a", Integrity: IntegrityOK},
		{Name: "b", Integrity: IntegrityNoTrailer},
		{Name: "c", Integrity: IntegrityHashMismatch},
		{Name: "d", Integrity: IntegritySidecarMismatch},
		{Name: "e", Integrity: integrityUnreadable + "truncated"},
	}
	var bad []string
	for _, e := range Damaged(entries) {
		bad = append(bad, e.Name)
	}
	if strings.Join(bad, " ") != "c d e" {
		t.Errorf("damaged %v, want c d e", bad)
	}
	code, err := CatalogStatus("/b", entries)
	if code != StatusProblem || err == nil || err.Error() != "3 of 5 snapshots in /b are damaged" {
		t.Errorf("status %d %v", code, err)
	}
	if code, err := CatalogStatus("/b", entries[:2]); code != StatusOK || err != nil {
		t.Errorf("intact entries: status %d %v", code, err)
	}
	if code, err := CatalogStatus("/b", nil); code != StatusOK || err != nil {
		t.Errorf("no entries: status %d %v", code, err)
	}
}

func TestEntrySource(t *testing.T) {
	for _, tc := range []struct {
		e    Entry
		want string
	}{
		{Entry{}, ""},
		{Entry{Meta: &Sidecar{}}, ""},
		{Entry{Meta: &Sidecar{SourceHost: "10.0.0.1"}}, "10.0.0.1"},
		{Entry{Meta: &Sidecar{SourceHost: "10.0.0.1", EtcdVersion: "3.5.17"}}, "10.0.0.1 (etcd 3.5.17)"},
		{Entry{CopyOf: "snapshot_202611211205.db", Meta: &Sidecar{SourceHost: "10.0.0.1"}}, "copy of snapshot_202611211205.db"},
	} {
		if got := tc.e.Source(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
}
