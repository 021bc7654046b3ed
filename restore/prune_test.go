package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// writeRun makes a run record the way a restore does (orchestrator.Record),
// with the events a run of that outcome leaves.
func writeRun(t *testing.T, dir, id, token string, start time.Time, outcome string) {
	t.Helper()
	rec, err := orchestrator.NewRecord(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if err := rec.WriteFile("token", []byte(token+"\n")); err != nil {
		t.Fatal(err)
	}
	if err := rec.WriteFile("plan.json", []byte(`{"steps":[{"name":"swap","action":"etcd-swap"},{"name":"health check","action":"etcd-health"}]}`)); err != nil {
		t.Fatal(err)
	}
	ev := func(step, host, status string, at time.Duration) {
		rec.Event(orchestrator.Event{Time: start.Add(at), Step: step, Host: host, Status: status})
	}
	ev("swap", "", "start", 0)
	switch outcome {
	case "refused":
		ev("swap", "h1", "failed", time.Second)
		ev("swap", "", "end:failed", time.Second)
		return
	default:
		ev("swap", "h1", "changed", time.Second)
		ev("swap", "", "end:ok", time.Second)
	}
	ev("health check", "", "start", 2*time.Second)
	if outcome == "healthy" {
		ev("health check", "", "ok", 3*time.Second)
		ev("health check", "", "end:ok", 3*time.Second)
	} else {
		ev("health check", "", "failed", 3*time.Second)
		ev("health check", "", "end:failed", 3*time.Second)
	}
}

func leftovers(host string, entries ...etcdhost.Leftover) *etcdhost.HostSpace {
	return &etcdhost.HostSpace{Host: host, Leftovers: entries}
}

func aside(tok string, mtime time.Time) etcdhost.Leftover {
	return etcdhost.Leftover{Kind: etcdhost.KindAside, Path: "/var/lib/etcd/member.before-" + tok, Token: tok, Bytes: 64 << 20, ModTime: mtime}
}

func staged(tok string, mtime time.Time) etcdhost.Leftover {
	return etcdhost.Leftover{Kind: etcdhost.KindStaged, Path: "/var/lib/etcd/.ezrestore/" + tok, Token: tok, Bytes: 20 << 10, ModTime: mtime}
}

func TestReadRunsJudgesHealthByTheHealthStep(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeRun(t, dir, "r1", "tok1", t0, "healthy")
	writeRun(t, dir, "r2", "tok2", t0.Add(time.Hour), "unhealthy")
	writeRun(t, dir, "r3", "tok3", t0.Add(2*time.Hour), "refused")
	runs, err := ReadRuns(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 {
		t.Fatalf("%+v", runs)
	}
	want := map[string][2]bool{"r1": {true, true}, "r2": {true, false}, "r3": {false, false}}
	for _, r := range runs {
		if w := want[r.ID]; r.Changed != w[0] || r.Healthy != w[1] || r.Token == "" || r.Start.IsZero() {
			t.Errorf("%s: %+v, want changed=%v healthy=%v", r.ID, r, w[0], w[1])
		}
	}
	if !runs[0].Start.Equal(t0) {
		t.Errorf("start is the first event's time: %v", runs[0].Start)
	}
	if runs, err := ReadRuns(filepath.Join(dir, "none")); err != nil || len(runs) != 0 {
		t.Fatalf("no record dir: %v %v", runs, err)
	}
}

func decide(t *testing.T, req PruneRequest, spaces []*etcdhost.HostSpace, runs []RunRecord) map[string]PruneDecision {
	t.Helper()
	ds, err := DecidePrune(GroupLeftovers(spaces, runs), req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]PruneDecision{}
	for _, d := range ds {
		out[d.Token] = d
	}
	return out
}

func TestDecidePrune(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	runs := []RunRecord{
		{ID: "r1", Token: "t1", Start: t0, Changed: true, Healthy: true},
		{ID: "r2", Token: "t2", Start: t0.Add(1 * time.Hour), Changed: true, Healthy: false},
		{ID: "r3", Token: "t3", Start: t0.Add(2 * time.Hour), Changed: true, Healthy: true},
		{ID: "r4", Token: "t4", Start: t0.Add(3 * time.Hour), Changed: true, Healthy: true},
		// r5 failed before its swap: only staged copies, and the newest.
		{ID: "r5", Token: "t5", Start: t0.Add(4 * time.Hour), Changed: true, Healthy: false},
	}
	host := func(h string) *etcdhost.HostSpace {
		return leftovers(h, aside("t1", t0), aside("t2", t0), aside("t3", t0), aside("t4", t0), staged("t5", t0),
			aside("t0", t0.Add(-time.Hour))) // t0: no record
	}
	spaces := []*etcdhost.HostSpace{host("h1"), host("h2"), nil}

	d := decide(t, PruneRequest{Keep: 1}, spaces, runs)
	removed := func(d map[string]PruneDecision) string {
		var r []string
		for _, tok := range []string{"t0", "t1", "t2", "t3", "t4", "t5"} {
			if d[tok].Remove {
				r = append(r, tok)
			}
		}
		return strings.Join(r, ",")
	}
	if got := removed(d); got != "t1,t3" {
		t.Fatalf("--keep 1 removes %q, want t1,t3 (t5 newest, t4 newest set aside, t2 unhealthy, t0 unrecorded):\n%+v", got, d)
	}
	if len(d["t1"].Entries) != 2 || d["t1"].Bytes != 128<<20 {
		t.Fatalf("t1 entries on both measured hosts: %+v", d["t1"])
	}
	if !strings.Contains(d["t2"].Why, "did not end healthy") || !strings.Contains(d["t0"].Why, "no run record") || d["t5"].Why != "the newest run" {
		t.Fatalf("reasons: t2 %q, t0 %q, t5 %q", d["t2"].Why, d["t0"].Why, d["t5"].Why)
	}
	if got := removed(decide(t, PruneRequest{Keep: 2}, spaces, runs)); got != "t1" {
		t.Fatalf("--keep 2 removes %q, want t1", got)
	}
	now := t0.Add(3 * time.Hour)
	if got := removed(decide(t, PruneRequest{Keep: 1, OlderThan: 150 * time.Minute, Now: now}, spaces, runs)); got != "t1" {
		t.Fatalf("--older-than 2h30m removes %q, want t1 (t3 is 1h old)", got)
	}
	for _, name := range []string{"r5", "t2", "t0"} {
		got := removed(decide(t, PruneRequest{Keep: 1, Run: name}, spaces, runs))
		want := map[string]string{"r5": "t5", "t2": "t2", "t0": "t0"}[name]
		if got != want {
			t.Fatalf("--run %s removes %q, want %s", name, got, want)
		}
	}
	if _, err := DecidePrune(GroupLeftovers(spaces, runs), PruneRequest{Keep: 1, Run: "nope"}); err == nil || !strings.Contains(err.Error(), "run r4") {
		t.Fatalf("an unknown --run: %v", err)
	}
}

func TestPruneRecordIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "prunes")
	rep := &PruneReport{Cluster: "c", Time: time.Now().UTC(), Removed: []PruneRemoved{{Host: "h1", Path: "/var/lib/etcd/member.before-t", Result: "removed", Bytes: 1}}}
	if err := rep.save(dir); err != nil {
		t.Fatal(err)
	}
	di, err := os.Stat(dir)
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", di.Mode(), err)
	}
	fi, err := os.Stat(rep.Record)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(rep.Record)
	if !strings.Contains(string(b), "member.before-t") {
		t.Fatalf("record: %s", b)
	}
}
