package restore

import (
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/playbooks"
	"github.com/ezrestore/ezrestore/steps"
)

func reading(host string, rev int64, running bool, errText string) MemberReading {
	m := MemberReading{Name: "etcd-" + host, MemberDB: etcdhost.MemberDB{Host: host, Revision: rev, Running: running, Error: errText}}
	m.Readable = errText == ""
	return m
}

func TestChooseMemberFreshest(t *testing.T) {
	ms := &MemberSource{Members: []MemberReading{
		reading("h1", 120, false, ""),
		reading("h2", 0, false, "damaged: etcdctl 3.4.23 snapshot status failed: Error: invalid database"),
		reading("h3", 180, false, ""),
	}, NewestBackup: &BackupRef{Name: "snapshot_202612061942.db", Revision: 100}}
	if err := chooseMember("member:freshest", ms); err != nil {
		t.Fatal(err)
	}
	if ms.Chosen != "h3" || ms.Ahead != 80 || !strings.Contains(ms.Why, "the highest revision (180) of the 2 readable members; the others: h1 at 120") {
		t.Fatalf("chose %s (%s), ahead %d", ms.Chosen, ms.Why, ms.Ahead)
	}
	var b strings.Builder
	ms.WriteText(&b)
	for _, want := range []string{"<- chosen", "Error: invalid database", "80 revisions ahead of the newest backup snapshot_202612061942.db"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestChooseMemberTieGoesToTheDbReadByItsTool(t *testing.T) {
	ms := &MemberSource{Members: []MemberReading{reading("h1", 50, true, ""), reading("h2", 50, false, "")}}
	if err := chooseMember("member:freshest", ms); err != nil || ms.Chosen != "h2" {
		t.Fatalf("chose %q, %v", ms.Chosen, err)
	}
}

func TestChooseMemberRefusals(t *testing.T) {
	all := []MemberReading{reading("h1", 0, false, "no db: stat: No such file"), reading("h2", 0, true, "etcd is active here and does not answer: timeout")}
	for _, c := range []struct{ spec, err string }{
		{"member:freshest", "no member's db can be read:\n  h1: no db: stat: No such file\n  h2: etcd is active here and does not answer"},
		{"member:h1", "the db of h1 cannot be used: no db"},
		{"member:h9", `no etcd member "h9" in the inventory (members: h1, h2)`},
		{"member:", "name a member"},
	} {
		ms := &MemberSource{Members: all}
		err := chooseMember(c.spec, ms)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: got %v, want %q", c.spec, err, c.err)
		}
	}
	ms := &MemberSource{Members: []MemberReading{reading("h1", 10, false, ""), reading("h2", 30, false, "")}, NewestBackup: &BackupRef{Name: "b", Revision: 20}}
	if err := chooseMember("member:etcd-h1", ms); err != nil || ms.Chosen != "h1" || ms.Ahead != -10 {
		t.Fatalf("chose %q ahead %d: %v", ms.Chosen, ms.Ahead, err)
	}
	var b strings.Builder
	ms.WriteText(&b)
	if !strings.Contains(b.String(), "10 revisions BEHIND the newest backup b") {
		t.Errorf("no warning that the named member is behind:\n%s", b.String())
	}
}

func TestWorkingQuorum(t *testing.T) {
	up := func(host string, id, leader uint64) etcdhost.MemberStatus {
		return etcdhost.MemberStatus{Host: host, MemberID: id, Leader: leader}
	}
	down := etcdhost.MemberStatus{Host: "h3", Error: "connection refused"}
	if q := workingQuorum([]etcdhost.MemberStatus{up("h1", 1, 1), up("h2", 2, 1), down}, 3); !strings.Contains(q, "etcd still has a working quorum: 2 of 3 members (h1, h2) follow the leader h1") {
		t.Errorf("two of three with a leader: %q", q)
	}
	if q := workingQuorum([]etcdhost.MemberStatus{up("h1", 1, 1), up("h2", 2, 1), up("h3", 3, 1)}, 3); !strings.HasPrefix(q, "etcd is healthy: 3 of 3 members") {
		t.Errorf("all three: %q", q)
	}
	if q := workingQuorum([]etcdhost.MemberStatus{up("h1", 1, 0), {Host: "h2", Error: "x"}, down}, 3); q != "" {
		t.Errorf("one alone without a leader: %q", q)
	}
	// A lone member that still believes it leads is no quorum of three.
	if q := workingQuorum([]etcdhost.MemberStatus{up("h1", 1, 1), {Host: "h2", Error: "x"}, down}, 3); q != "" {
		t.Errorf("a lone self-leader: %q", q)
	}
}

func TestMemberSourceAllowed(t *testing.T) {
	actions := steps.Actions(&steps.Restore{})
	pb, err := orchestrator.ParsePlaybook(playbooks.Restore, playbooks.RestoreName, actions)
	if err != nil {
		t.Fatal(err)
	}
	if err := memberSourceAllowed(Request{Snapshot: "member:freshest"}, pb, actions); err != nil {
		t.Errorf("built-in playbook: %v", err)
	}
	if err := memberSourceAllowed(Request{Snapshot: "member:freshest", FromStep: "push snapshot"}, pb, actions); err == nil || !strings.Contains(err.Error(), "cannot resume") {
		t.Errorf("--from-step: %v", err)
	}
	old := strings.Replace(string(playbooks.Restore), "action: member-copy", "action: etcd-space", 1)
	pb2, err := orchestrator.ParsePlaybook([]byte(old), "old.yml", actions)
	if err != nil {
		t.Fatal(err)
	}
	if err := memberSourceAllowed(Request{Snapshot: "member:freshest"}, pb2, actions); err == nil || !strings.Contains(err.Error(), "needs a step with action member-copy on the etcd group before the push in playbook old.yml") {
		t.Errorf("playbook without the copy: %v", err)
	}
}

func TestMemberCopyName(t *testing.T) {
	if n := MemberCopyName("node/1 x", mustTime(t, "2026-12-06T19:43:13Z")); n != "member_node_1_x_20261206T194313Z.db" {
		t.Errorf("got %s", n)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
