package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/snapshot"
)

func TestScheduleUnits(t *testing.T) {
	s := Schedule{Cluster: "k8s-01", Every: "30m", User: "root", EnvFile: "/etc/ezrestore/backup-k8s-01.env",
		Command: []string{"/usr/local/bin/ezrestore", "--base", "/etc/kubeasz", "backup", "k8s-01", "--to", "s3://b/p", "--age-recipient", "ssh-ed25519 AAAA x%y$z"}}
	svc, tmr, err := s.Units()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=oneshot", "EnvironmentFile=-/etc/ezrestore/backup-k8s-01.env",
		`ExecStart=/usr/local/bin/ezrestore --base /etc/kubeasz backup k8s-01 --to s3://b/p --age-recipient "ssh-ed25519 AAAA x%%y$$z"`} {
		if !strings.Contains(svc, want) {
			t.Errorf("service lacks %q:\n%s", want, svc)
		}
	}
	if strings.Contains(svc, "User=") {
		t.Errorf("root needs no User= line:\n%s", svc)
	}
	for _, want := range []string{"OnBootSec=1800s", "OnUnitActiveSec=1800s", "Unit=ezrestore-backup-k8s-01.service", "WantedBy=timers.target"} {
		if !strings.Contains(tmr, want) {
			t.Errorf("timer lacks %q:\n%s", want, tmr)
		}
	}
	s.Every, s.User = "daily", "backup"
	svc, tmr, err = s.Units()
	if err != nil || !strings.Contains(tmr, "OnCalendar=daily") || !strings.Contains(tmr, "Persistent=true") || strings.Contains(tmr, "OnUnitActiveSec") || !strings.Contains(svc, "User=backup") {
		t.Errorf("calendar schedule: %v\n%s\n%s", err, svc, tmr)
	}
	for _, bad := range []string{"", "10s", "sometimes", "1h\nExecStart=/bin/sh"} {
		s.Every = bad
		if _, _, err := s.Units(); err == nil {
			t.Errorf("--every %q accepted", bad)
		}
	}
	s.Every, s.Cluster = "1h", "a b"
	if _, _, err := s.Units(); err == nil {
		t.Error("a cluster name with a space accepted as a unit name")
	}
	s.Cluster, s.Command[0] = "k", "ezrestore"
	if _, _, err := s.Units(); err == nil {
		t.Error("a relative binary accepted")
	}
}

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "plain",
		"s3://b/p":   "s3://b/p",
		"a b":        `"a b"`,
		`q"uote`:     `"q\"uote"`,
		`back\slash`: `"back\\slash"`,
		"50%":        "50%%",
		"$HOME":      "$$HOME",
		"":           `""`,
	} {
		if got := SystemdQuote(in); got != want {
			t.Errorf("SystemdQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// writeBackup files a fake backup (retention reads names, times and
// sidecars, not contents) and returns its path.
func writeBackup(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPruneLocal(t *testing.T) {
	dir := t.TempDir()
	// Hourly backups over two days, one an hour.
	start := time.Date(2026, 11, 20, 0, 30, 0, 0, time.Local)
	var names []string
	for i := 0; i < 48; i++ {
		n := snapshot.BackupName(start.Add(time.Duration(i)*time.Hour), 1)
		writeBackup(t, dir, n, n)
		names = append(names, n)
	}
	writeBackup(t, dir, "hand-made.db", "x")
	// snapshot.db copies an old backup (by content, no sidecar): kept.
	copied := names[5]
	writeBackup(t, dir, snapshot.LatestName, copied)

	p := snapshot.Retention{Last: 3, Daily: 2}
	dry, err := PruneLocal(dir, p, true)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]string{}
	for _, d := range dry.Decisions {
		if d.Keep {
			kept[d.Name] = d.Reason()
		}
	}
	// The last 3, the newest of each of the 2 days (the newest one already
	// counted), and the copy of snapshot.db.
	want := map[string]string{
		names[47]: "last snapshot, daily snapshot",
		names[46]: "last snapshot",
		names[45]: "last snapshot",
		names[23]: "daily snapshot",
		copied:    ReasonCopied,
	}
	if len(kept) != len(want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
	for n, r := range want {
		if kept[n] != r {
			t.Errorf("%s kept for %q, want %q", n, kept[n], r)
		}
	}
	if len(dry.Removed) != 0 {
		t.Fatalf("a dry run removed %v", dry.Removed)
	}
	if des, _ := os.ReadDir(dir); len(des) != 50 {
		t.Fatalf("a dry run changed the dir: %d entries", len(des))
	}
	done, err := PruneLocal(dir, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(done.Removed) != 48-len(want) {
		t.Errorf("removed %d, want %d", len(done.Removed), 48-len(want))
	}
	for _, n := range append([]string{"hand-made.db", snapshot.LatestName}, names[47], copied, names[23]) {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	// --keep N is --keep-last N; a disagreeing pair is refused.
	o := Options{Keep: 2}
	if err := prepareFinish(&o); err != nil || o.Retention.Last != 2 {
		t.Errorf("Keep 2 gave %+v, %v", o.Retention, err)
	}
	o = Options{Keep: 2, Retention: snapshot.Retention{Last: 3}}
	if err := prepareFinish(&o); err == nil {
		t.Error("--keep 2 --keep-last 3 accepted")
	}
}
