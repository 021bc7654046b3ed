package steps

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// One confirm action serves restore and rollback: each says what a yes lets
// happen and what to do without a terminal.
func TestConfirmAsksWhatEachRunSays(t *testing.T) {
	run := func(s Confirmable) (orchestrator.OpResult, error) {
		return (&Confirm{s}).Exec(context.Background(), &orchestrator.Env{}, nil, &orchestrator.Op{}, nil)
	}
	r := &Restore{Members: threeMembers(), Snapshot: SnapshotRef{Path: "/b/s.db", Revision: 7}}
	rb := &Rollback{Record: SetAsideRecord{RunID: "run1", Token: "tok1", Hosts: []SetAsideHost{{Host: "10.0.0.1"}}}}
	if _, err := run(r); err == nil || !strings.Contains(err.Error(), "no terminal to ask on: run `ezrestore plan` to review, then restore with --yes") {
		t.Errorf("restore without a terminal: %v", err)
	}
	if _, err := run(rb); err == nil || !strings.Contains(err.Error(), "then run rollback with --yes") {
		t.Errorf("rollback without a terminal: %v", err)
	}
	var asked []string
	ask := func(answer bool) func(string) (bool, error) {
		return func(s string) (bool, error) { asked = append(asked, s); return answer, nil }
	}
	r.Confirm, rb.Confirm = ask(true), ask(false)
	if res, err := run(r); err != nil || res.Message != "confirmed" {
		t.Errorf("restore confirmed: %+v %v", res, err)
	}
	if _, err := run(rb); err == nil || err.Error() != "not confirmed: nothing was changed" {
		t.Errorf("rollback declined: %v", err)
	}
	if len(asked) != 2 || !strings.Contains(asked[0], "restores /b/s.db (revision 7)") || !strings.Contains(asked[1], "puts back the data run run1 set aside on 10.0.0.1") {
		t.Errorf("summaries asked: %q", asked)
	}
	rb.Yes = true
	if res, err := run(rb); err != nil || res.Message != "--yes given" {
		t.Errorf("rollback --yes: %+v %v", res, err)
	}
}

// One health action serves restore and rollback: a restore's members must
// reach the snapshot's revision, a rollback's come back at the old data's own.
func TestHealthJudgesTheRevisionEachRunWants(t *testing.T) {
	ms := threeMembers()
	cs := conns{}
	ids := []uint64{0xa1, 0xb2, 0xc3}
	var list []string
	for i, m := range ms {
		list = append(list, fmt.Sprintf(`{"ID":%d,"name":%q,"peerURLs":[%q]}`, ids[i], m.Name, m.PeerURL))
	}
	rb := &Rollback{Members: ms, HealthTimeout: 300 * time.Millisecond, facts: map[string]*etcdhost.EtcdFacts{}}
	r := &Restore{Members: ms, HealthTimeout: 300 * time.Millisecond, Snapshot: SnapshotRef{Revision: 50}}
	for i, m := range ms {
		status := fmt.Sprintf(`[{"Endpoint":"x","Status":{"header":{"cluster_id":7,"member_id":%d,"revision":9,"raft_term":2},"version":"3.4.23","dbSize":1,"leader":178,"raftIndex":8,"raftTerm":2}}]
{"header":{},"members":[%s]}`, ids[i], strings.Join(list, ","))
		cs[m.Host.Name] = scriptedConn{h: m.Host, status: status}
		f := &etcdhost.EtcdFacts{Etcdctl: "/bin/etcdctl", Config: &etcdhost.EtcdConfig{ClientURLs: m.ClientURL}}
		rb.facts[m.Host.Name], r.Host(m.Host.Name).Etcd = f, f
	}
	env := &orchestrator.Env{Conns: cs, Out: &strings.Builder{}, Unreachable: map[string]error{}}
	sp, err := (&EtcdHealth{rb}).Plan(context.Background(), env, &orchestrator.Step{}, nil)
	if err != nil || strings.Contains(sp.Tasks[0].Ops[0].Desc, "revision") {
		t.Fatalf("a rollback's health plan asks for no revision: %+v %v", sp, err)
	}
	if res, err := (&EtcdHealth{rb}).Exec(context.Background(), env, nil, &orchestrator.Op{}, nil); err != nil || !strings.HasPrefix(res.Message, "healthy") {
		t.Fatalf("rollback at the old data's revision 9: %+v %v", res, err)
	}
	_, err = (&EtcdHealth{r}).Exec(context.Background(), env, nil, &orchestrator.Op{}, nil)
	if err == nil || !strings.Contains(err.Error(), "etcd is not healthy after") {
		t.Fatalf("a restore of revision 50 found at revision 9 is not healthy: %v", err)
	}
}
