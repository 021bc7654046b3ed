package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
)

func TestMemberCopyPlan(t *testing.T) {
	hosts := []*inventory.Host{{Name: "h1"}, {Name: "h2"}}
	r := &Restore{Token: "etcd-restore-20261206T000000Z"}
	for _, h := range hosts {
		r.Host(h.Name).Etcd = &etcdhost.EtcdFacts{Host: h.Name, Active: "inactive", Config: &etcdhost.EtcdConfig{DataDir: "/var/lib/etcd"}}
	}
	r.Host("h2").Etcd.Active = "active"
	ctx, env, step := context.Background(), &orchestrator.Env{}, &orchestrator.Step{}

	// A snapshot file: nothing to copy, nothing changes.
	r.Snapshot = SnapshotRef{Path: "/backup/snapshot.db", SHA256: "ab", Size: 10}
	sp, err := (&MemberCopy{r}).Plan(ctx, env, step, hosts)
	if err != nil || !sp.ReadOnly || len(sp.Tasks) != 0 || !strings.Contains(strings.Join(sp.Notes, "\n"), "nothing to copy") {
		t.Fatalf("file source: %+v, %v", sp, err)
	}

	// A member: one task on it, etcd stopped before the copy; the push's
	// sha256 is the copy's, known at run time.
	r.Snapshot = SnapshotRef{Path: "/backup/member_h2_x.db", Size: 2 << 20, Revision: 77, Member: "h2"}
	sp, err = (&MemberCopy{r}).Plan(ctx, env, step, hosts)
	if err != nil || sp.ReadOnly || len(sp.Tasks) != 1 || sp.Tasks[0].Host != "h2" || len(sp.Tasks[0].Ops) != 2 {
		t.Fatalf("member source: %+v, %v", sp, err)
	}
	stop, cp := sp.Tasks[0].Ops[0], sp.Tasks[0].Ops[1]
	if !stop.Changes || !strings.Contains(stop.Cmd, "systemctl stop etcd.service") || !strings.Contains(stop.Desc, "it runs now, without a quorum") {
		t.Errorf("stop op: %+v", stop)
	}
	if pl, _ := orchestrator.PayloadOf[memberCopyPayload](cp); cp.Kind != opMemberCopy || pl.Remote != "/var/lib/etcd/member/snap/db" || pl.Local != r.Snapshot.Path || !strings.Contains(cp.Desc, "revision at least 77") {
		t.Errorf("copy op: %+v", cp)
	}
	if !strings.Contains(strings.Join(sp.Notes, "\n"), "WAL but not yet in its db") {
		t.Errorf("notes: %v", sp.Notes)
	}
	push, err := (&PushSnapshot{r}).Plan(ctx, env, &orchestrator.Step{Params: orchestrator.Params{}}, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if op := push.Tasks[0].Ops[1]; op.Payload.(pushPayload).SHA256 != "" || !strings.Contains(op.Desc, "known once the member-copy step has copied it from h2") {
		t.Errorf("push op: %+v", op)
	}
	// A push whose copy did not run refuses rather than push unchecked.
	_, err = (&PushSnapshot{r}).Exec(ctx, env, push.Tasks[0], &orchestrator.Op{Kind: opPush, Payload: pushPayload{Local: r.Snapshot.Path}}, nil)
	if err == nil || !strings.Contains(err.Error(), "the member-copy step did not copy it in this run") {
		t.Errorf("push without the copy: %v", err)
	}

	// The member is not among the step's hosts.
	if _, err := (&MemberCopy{r}).Plan(ctx, env, step, hosts[:1]); err == nil || !strings.Contains(err.Error(), "must target the etcd group") {
		t.Errorf("member outside the step's hosts: %v", err)
	}
}
