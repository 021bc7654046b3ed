package etcdhost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/internal/testkit/localconn"
	"github.com/ezrestore/ezrestore/inventory"
)

func TestProbeSpaceFindsLeftoversOfEveryKind(t *testing.T) {
	for _, v := range []string{"plain", "with space", "it's", "$(touch PWNED)", "*", "a|b&c"} {
		t.Run(v, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "etcd "+v)
			wal := filepath.Join(dir, "wal "+v)
			localconn.MkFile(t, data+"/member/snap/db", 4096)
			localconn.MkFile(t, wal+"/0.wal", 4096)
			localconn.MkFile(t, data+"/member.before-tok1/snap/db", 200<<10)
			localconn.MkFile(t, data+"/member.restored-tok2/snap/db", 10<<10)
			localconn.MkFile(t, data+"/.ezrestore/tok3/snapshot.db", 300<<10)
			localconn.MkFile(t, wal+".before-tok1/0.wal", 100<<10)
			localconn.MkFile(t, wal+".ezrestore-tok3/0.wal", 1<<10)
			// Not a name ezrestore makes: seen, never given a token.
			localconn.MkFile(t, data+"/member.before-bad name/x", 1)
			f := &EtcdFacts{Host: "h1", Config: &EtcdConfig{DataDir: data, WalDir: wal}}
			hs, err := ProbeSpace(context.Background(), localconn.Conn{H: &inventory.Host{Name: "h1"}}, f, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
				t.Fatal("a path ran as a command")
			}
			got := map[string]Leftover{}
			for _, l := range hs.Leftovers {
				got[l.Path] = l
			}
			want := []struct {
				path, kind, token string
				min               int64
			}{
				{data + "/member.before-tok1", KindAside, "tok1", 200 << 10},
				{data + "/member.restored-tok2", KindRestored, "tok2", 10 << 10},
				{data + "/.ezrestore/tok3", KindStaged, "tok3", 300 << 10},
				{wal + ".before-tok1", KindAsideWal, "tok1", 100 << 10},
				{wal + ".ezrestore-tok3", KindStagedWal, "tok3", 1 << 10},
				{data + "/member.before-bad name", KindAside, "", 0},
			}
			for _, w := range want {
				l, ok := got[w.path]
				if !ok {
					t.Errorf("leftover %s not found; got %+v", w.path, hs.Leftovers)
					continue
				}
				if l.Kind != w.kind || l.Token != w.token || l.Bytes < w.min || l.ModTime.IsZero() {
					t.Errorf("%s: got %+v, want kind %s token %q at least %d bytes", w.path, l, w.kind, w.token, w.min)
				}
			}
			if len(hs.Leftovers) != len(want) {
				t.Errorf("got %d leftovers, want %d: %+v", len(hs.Leftovers), len(want), hs.Leftovers)
			}
			for _, role := range []string{"data", "staging", "wal"} {
				fs, ok := hs.FSOf(role)
				if !ok || fs.Free <= 0 || fs.Size < fs.Free || fs.Dev == "" || fs.Mount == "" {
					t.Errorf("filesystem of %s: %+v", role, fs)
				}
			}
			d, _ := hs.FSOf("data")
			s, _ := hs.FSOf("staging")
			if d.Dev != s.Dev {
				t.Errorf("data and staging in one dir tree measured on different devices: %s, %s", d.Dev, s.Dev)
			}
			var total int64
			for _, r := range hs.ByRun() {
				total += r.Bytes
			}
			if total != hs.Total() || hs.ByRun()[len(hs.ByRun())-1].Token != "" {
				t.Errorf("ByRun: %+v", hs.ByRun())
			}
		})
	}
}

func TestProbeSpaceMeasuresDirsNotYetMade(t *testing.T) {
	dir := t.TempDir()
	f := &EtcdFacts{Host: "h1", Config: &EtcdConfig{DataDir: dir + "/not/yet/etcd", WalDir: dir + "/no/wal"}}
	hs, err := ProbeSpace(context.Background(), localconn.Conn{H: &inventory.Host{Name: "h1"}}, f, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.FS) != 3 || len(hs.Leftovers) != 0 {
		t.Fatalf("%+v", hs)
	}
}

func TestClassifyLeftover(t *testing.T) {
	f := &EtcdFacts{Config: &EtcdConfig{DataDir: "/var/lib/etcd", WalDir: "/var/lib/etcd-wal"}}
	ok := map[string][2]string{
		"/var/lib/etcd/member.before-etcd-restore-20260101T000000Z": {KindAside, "etcd-restore-20260101T000000Z"},
		"/var/lib/etcd/member.restored-t1":                          {KindRestored, "t1"},
		"/var/lib/etcd/.ezrestore/t2":                               {KindStaged, "t2"},
		"/var/lib/etcd-wal.before-t3":                               {KindAsideWal, "t3"},
		"/var/lib/etcd-wal.restored-t4":                             {KindRestoredWal, "t4"},
		"/var/lib/etcd-wal.ezrestore-t5":                            {KindStagedWal, "t5"},
		// Inside a WAL dir kept in place (a mount point, a symlink).
		"/var/lib/etcd-wal/.before-t6":    {KindAsideWal, "t6"},
		"/var/lib/etcd-wal/.restored-t7":  {KindRestoredWal, "t7"},
		"/var/lib/etcd-wal/.ezrestore-t8": {KindStagedWal, "t8"},
		// Inside a member dir kept in place.
		"/var/lib/etcd/member/.before-t9":     {KindAside, "t9"},
		"/var/lib/etcd/member/.restored-t10":  {KindRestored, "t10"},
		"/var/lib/etcd/member/.ezrestore-t11": {KindStaged, "t11"},
	}
	for p, w := range ok {
		kind, tok, yes := ClassifyLeftover(p, f)
		if !yes || kind != w[0] || tok != w[1] {
			t.Errorf("%s: got %q %q %v, want %v", p, kind, tok, yes, w)
		}
	}
	for _, p := range []string{
		"/var/lib/etcd", "/var/lib/etcd/member", "/var/lib/etcd-wal", "/var/lib", "/",
		"/var/lib/etcd/member.before-", "/var/lib/etcd/member.before-../../x", "/var/lib/etcd/member.before-a/b",
		"/var/lib/etcd/.ezrestore", "/var/lib/etcd/.ezrestore/", "/var/lib/etcd/.ezrestore/.hidden",
		"var/lib/etcd/member.before-t", "/var/lib/etcd/member.before-t/", "/var/lib/etcd//member.before-t",
		"/var/lib/etcd/member/wal", "/var/lib/etcd/member.old", "/var/lib/etcd-wal/member.before-t",
		"/var/lib/etcd/member.before-with space",
		"/var/lib/etcd-wal/.before-", "/var/lib/etcd-wal/.before-a/b", "/var/lib/etcd-wal/before-t", "/var/lib/etcd-wal/x/.before-t",
	} {
		if kind, tok, yes := ClassifyLeftover(p, f); yes {
			t.Errorf("%s accepted as %s of %s", p, kind, tok)
		}
	}
	// A unit whose WAL dir sits inside a name that looks set aside: that dir
	// holds live data and is never a leftover.
	odd := &EtcdFacts{Config: &EtcdConfig{DataDir: "/d", WalDir: "/d/member.before-t/wal"}}
	if _, _, yes := ClassifyLeftover("/d/member.before-t", odd); yes {
		t.Error("a dir holding the live WAL dir was accepted")
	}
}

func hostSpace(free map[string]int64, devs map[string]string) *HostSpace {
	hs := &HostSpace{}
	for _, role := range []string{"data", "staging", "wal"} {
		if _, ok := free[role]; ok {
			hs.FS = append(hs.FS, FSSpace{Role: role, Path: "/" + role, Dev: devs[role], Mount: "/mnt/" + devs[role], Free: free[role]})
		}
	}
	return hs
}

func TestCheckSpaceCountsTheWALSegment(t *testing.T) {
	f := &EtcdFacts{Config: &EtcdConfig{DataDir: "/var/lib/etcd"}}
	// The report that started it: 25.7 MiB free was "ok" for a 20 KiB snapshot.
	hs := hostSpace(map[string]int64{"data": 25_700 << 10, "staging": 25_700 << 10}, map[string]string{"data": "1", "staging": "1"})
	_, err := CheckSpace(SpaceNeeded(f, 20<<10, hs), hs)
	if err == nil || !strings.Contains(err.Error(), "new WAL segment 64.0 MiB") || !strings.Contains(err.Error(), "25.1 MiB free") {
		t.Fatalf("want a refusal naming the WAL segment and the free space, got %v", err)
	}
	hs = hostSpace(map[string]int64{"data": 1 << 30, "staging": 1 << 30}, map[string]string{"data": "1", "staging": "1"})
	found, err := CheckSpace(SpaceNeeded(f, 20<<10, hs), hs)
	if err != nil || len(found) != 1 || !strings.Contains(found[0], "data and staging") {
		t.Fatalf("one filesystem, enough room: %v %v", found, err)
	}
}

func TestCheckSpaceSeesASmallStagingFilesystem(t *testing.T) {
	f := &EtcdFacts{Config: &EtcdConfig{DataDir: "/var/lib/etcd"}}
	hs := hostSpace(map[string]int64{"data": 10 << 30, "staging": 1 << 20}, map[string]string{"data": "1", "staging": "2"})
	needs := SpaceNeeded(f, 100<<20, hs)
	_, err := CheckSpace(needs, hs)
	if err == nil || !strings.Contains(err.Error(), "/mnt/2") || strings.Contains(err.Error(), "/mnt/1") {
		t.Fatalf("want a refusal for the staging filesystem only, got %v", err)
	}
	// The restored db and the WAL are moved into the data dir by copy.
	var onData int64
	for _, n := range needs {
		if n.Role == "data" {
			onData += n.Bytes
		}
	}
	if onData != 100<<20+WALSegmentBytes {
		t.Fatalf("data filesystem needs %d, want the db and a WAL segment", onData)
	}
}

func TestCheckSpacePutsTheWALOnItsOwnFilesystem(t *testing.T) {
	f := &EtcdFacts{Config: &EtcdConfig{DataDir: "/var/lib/etcd", WalDir: "/wal"}}
	hs := hostSpace(map[string]int64{"data": 10 << 30, "staging": 10 << 30, "wal": 70 << 20}, map[string]string{"data": "1", "staging": "1", "wal": "3"})
	_, err := CheckSpace(SpaceNeeded(f, 1<<20, hs), hs)
	if err == nil || !strings.Contains(err.Error(), "wal dir /wal") || !strings.Contains(err.Error(), "margin 16.0 MiB") {
		t.Fatalf("want a refusal for the WAL filesystem with its margin, got %v", err)
	}
}

func TestQuotaBytes(t *testing.T) {
	for v, want := range map[string]int64{"": DefaultQuotaBytes, "0": DefaultQuotaBytes, "8589934592": 8 << 30, "8.589934592e+09": 8 << 30, "-1": 0} {
		f := &EtcdFacts{Config: &EtcdConfig{QuotaBackendBytes: v, From: map[string]string{"quota-backend-bytes": "ExecStart --quota-backend-bytes"}}}
		if got, from := QuotaBytes(f); got != want || from == "" {
			t.Errorf("%q: got %d (%s), want %d", v, got, from, want)
		}
	}
}

func TestUnitQuotaIsRead(t *testing.T) {
	u, err := ParseUnit("[Service]\nExecStart=/usr/bin/etcd --name a --quota-backend-bytes=8589934592\n")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ResolveEtcd(u, nil)
	if err != nil || c.QuotaBackendBytes != "8589934592" {
		t.Fatalf("%+v %v", c, err)
	}
}

// etcdctl 3.6 logs a warning about ETCDCTL_API on stderr, which the probe
// reads with the alarms: a log line is not an alarm, nor an error.
func TestParseAlarmsSkipsEtcdctlLogLines(t *testing.T) {
	out := `{"level":"warn","ts":"2026-11-22T07:09:16.179571Z","caller":"flags/flag.go:94","msg":"unrecognized environment variable","environment-variable":"ETCDCTL_API=3"}
memberID:13803658152347727308 alarm:NOSPACE
`
	alarms, err := ParseAlarms(out)
	if err != nil || len(alarms) != 1 || alarms[0].Alarm != "NOSPACE" {
		t.Fatalf("ParseAlarms = %v, %v", alarms, err)
	}
	if alarms, err := ParseAlarms(`{"level":"warn","msg":"unrecognized environment variable"}` + "\n"); err != nil || len(alarms) != 0 {
		t.Fatalf("a lone log line: %v, %v", alarms, err)
	}
}

func TestParseAlarms(t *testing.T) {
	got, err := ParseAlarms("memberID:3756334428740106263 alarm:NOSPACE \nmemberID:12 alarm:CORRUPT\n")
	if err != nil || len(got) != 2 || got[0].MemberID != 3756334428740106263 || got[0].Alarm != "NOSPACE" || got[1].Alarm != "CORRUPT" {
		t.Fatalf("%+v %v", got, err)
	}
	if got, err := ParseAlarms(""); err != nil || len(got) != 0 {
		t.Fatalf("no alarms: %+v %v", got, err)
	}
	if _, err := ParseAlarms("Error: context deadline exceeded\n@@alarmfail 1"); err == nil {
		t.Fatal("a failed etcdctl read as no alarm")
	}
}

func judgeFixture(dbSize, inUse int64, alarms []Alarm) *EtcdSpaceReport {
	facts := map[string]*EtcdFacts{}
	var st []MemberStatus
	for i, h := range []string{"h1", "h2", "h3"} {
		facts[h] = &EtcdFacts{Etcdctl: "/opt/kube/bin/etcdctl", Config: &EtcdConfig{ClientURLs: "https://" + h + ":2379", QuotaBackendBytes: "104857600", From: map[string]string{"quota-backend-bytes": "ExecStart --quota-backend-bytes"}}}
		st = append(st, MemberStatus{Host: h, MemberID: uint64(i + 1), Leader: 1, DBSize: dbSize, DBSizeInUse: inUse, Revision: 42})
	}
	return JudgeEtcdSpace(st, func(h string) *EtcdFacts { return facts[h] }, alarms)
}

func TestJudgeEtcdSpace(t *testing.T) {
	if r := judgeFixture(1<<20, 1<<20, nil); len(r.Verdict) != 0 || len(r.Fix) != 0 || len(r.Members) != 3 {
		t.Fatalf("a small db: %+v", r)
	}
	r := judgeFixture(95<<20, 90<<20, []Alarm{{MemberID: 2, Alarm: "NOSPACE"}, {MemberID: 2, Alarm: "NOSPACE"}})
	text := strings.Join(r.Verdict, "\n")
	if !strings.Contains(text, "ALARM NOSPACE raised by h2") || !strings.Contains(text, "h1: db 95.0 MiB is 95% of its 100.0 MiB quota") {
		t.Fatalf("verdict: %s", text)
	}
	fix := strings.Join(r.Fix, "\n")
	iCompact, iDisarm := strings.Index(fix, " compact"), strings.Index(fix, "alarm disarm")
	iDefragLeader := strings.Index(fix, "h1: ETCDCTL_API=3 /opt/kube/bin/etcdctl --endpoints=https://h1:2379 --command-timeout=60s defrag")
	iDefragFollower := strings.Index(fix, "--endpoints=https://h2:2379 --command-timeout=60s defrag")
	if iCompact < 0 || iDisarm < 0 || iDefragLeader < 0 || iDefragFollower < 0 || !(iCompact < iDefragFollower && iDefragFollower < iDefragLeader && iDefragLeader < iDisarm) {
		t.Fatalf("want compact, defrag followers then the leader, then disarm:\n%s", fix)
	}
	for _, m := range r.Members {
		if (m.Host == "h2") != (len(m.Alarms) == 1) {
			t.Fatalf("alarms per member: %+v", r.Members)
		}
	}
	r = judgeFixture(60<<20, 20<<20, nil)
	if len(r.Verdict) != 3 || !strings.Contains(r.Verdict[0], "gives back 40.0 MiB") || strings.Contains(strings.Join(r.Fix, "\n"), "disarm") {
		t.Fatalf("fragmented: %+v", r)
	}
	r = judgeFixture(60<<20, 60<<20, []Alarm{{MemberID: 3, Alarm: "CORRUPT"}})
	if len(r.Verdict) != 1 || !strings.Contains(r.Verdict[0], "do not just disarm") || len(r.Fix) != 0 {
		t.Fatalf("corrupt: %+v", r)
	}
}

// The preflight hook on a real filesystem: the line names every role and the
// WAL segment; a snapshot larger than the disk is refused with the numbers.
func TestPreflightSpaceOnARealFilesystem(t *testing.T) {
	dir := t.TempDir()
	f := &EtcdFacts{Host: "h1", Config: &EtcdConfig{DataDir: dir + "/etcd", WalDir: dir + "/wal"}}
	conn := localconn.Conn{H: &inventory.Host{Name: "h1"}}
	line, err := PreflightSpace(context.Background(), conn, f, 20<<10)
	if err != nil {
		t.Skipf("this machine's %s has too little room for the check: %v", dir, err)
	}
	if !strings.Contains(line, "new WAL segment 64.0 MiB") || !strings.Contains(line, "data and staging and wal dir") {
		t.Fatalf("%s", line)
	}
	_, err = PreflightSpace(context.Background(), conn, f, 1<<60)
	if err == nil || !strings.Contains(err.Error(), "not enough free space") || !strings.Contains(err.Error(), "staged snapshot 1.0 EiB") {
		t.Fatalf("a snapshot larger than the disk: %v", err)
	}
}
