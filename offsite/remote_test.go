package offsite

import (
	"strings"
	"testing"
	"time"
)

func TestResolveRemote(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	entries := []RemoteEntry{ // newest first, as List gives them
		{Name: "snapshot_202611211200.db.age", Time: at("2026-11-21T12:00:00Z")},
		{Name: "snapshot_202611211100.db", Time: at("2026-11-21T11:00:00Z")},
		{Name: "snapshot_202611211000.db.age", Time: at("2026-11-21T10:00:00Z")},
	}
	for spec, want := range map[string]string{
		"":                             "snapshot_202611211200.db.age",
		"latest":                       "snapshot_202611211200.db.age",
		"before:2026-11-21T12:00:00Z":  "snapshot_202611211100.db",
		"before:2026-11-21T10:30:00Z":  "snapshot_202611211000.db.age",
		"snapshot_202611211000.db":     "snapshot_202611211000.db.age", // the encrypted one, by its plain name
		"snapshot_202611211100.db":     "snapshot_202611211100.db",
		"snapshot_202611211000.db.age": "snapshot_202611211000.db.age",
		"before:2026-11-21T09:00:00Z":  "",
		"snapshot_202611210900.db":     "",
		"before:yesterday":             "",
	} {
		e, how, err := Resolve(entries, "s3://b/p", spec)
		switch {
		case want == "" && err == nil:
			t.Errorf("Resolve(%q) = %s, want an error", spec, e.Name)
		case want != "" && (err != nil || e.Name != want):
			t.Errorf("Resolve(%q) = %v, %v; want %s", spec, e, err, want)
		case want != "" && !strings.Contains(how, want):
			t.Errorf("Resolve(%q): how %q does not name it", spec, how)
		}
	}
	if _, _, err := Resolve(nil, "s3://b/p", "latest"); err == nil || !strings.Contains(err.Error(), "no snapshots under s3://b/p") {
		t.Errorf("empty prefix: %v", err)
	}
}
