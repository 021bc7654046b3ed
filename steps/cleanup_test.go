package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/internal/testkit/localconn"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// The clean-up runs in a real sh: it removes this run's staging and nothing
// else, and leaves the staging root only when another run still uses it.
func TestCleanupRemovesOnlyThisRunsStaging(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "etcd it's")
	localconn.MkFile(t, data+"/member/snap/db", 10)
	localconn.MkFile(t, data+"/member.before-tok/snap/db", 10)
	localconn.MkFile(t, data+"/.ezrestore/tok/snapshot.db", 10)
	localconn.MkFile(t, data+"/.ezrestore/other/snapshot.db", 10)
	host := &inventory.Host{Name: "h1"}
	r := &Restore{Members: []inventory.EtcdMember{{Host: host}}, Token: "tok"}
	r.Host("h1").Etcd = &etcdhost.EtcdFacts{Config: &etcdhost.EtcdConfig{DataDir: data}}
	run := func() string {
		sp, err := (&EtcdCleanup{r}).Plan(context.Background(), &orchestrator.Env{}, &orchestrator.Step{}, []*inventory.Host{host})
		if err != nil {
			t.Fatal(err)
		}
		res, err := localconn.Conn{H: host}.Run(context.Background(), sp.Tasks[0].Ops[0].Cmd)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%v %d %s", err, res.ExitCode, res.Stderr)
		}
		return string(res.Stdout)
	}
	if out := run(); !strings.Contains(out, "removed "+data+"/.ezrestore/tok") {
		t.Fatalf("output: %s", out)
	}
	for _, p := range []string{"member/snap/db", "member.before-tok/snap/db", ".ezrestore/other/snapshot.db"} {
		if _, err := os.Stat(filepath.Join(data, p)); err != nil {
			t.Fatalf("%s removed: %v", p, err)
		}
	}
	if _, err := os.Stat(data + "/.ezrestore/tok"); !os.IsNotExist(err) {
		t.Fatalf("staging of this run kept: %v", err)
	}
	// Run again (a resumed run): nothing to do, no failure.
	if out := run(); !strings.Contains(out, "nothing staged") {
		t.Fatalf("second run: %s", out)
	}
	if err := os.RemoveAll(data + "/.ezrestore/other"); err != nil {
		t.Fatal(err)
	}
	run()
	if _, err := os.Stat(data + "/.ezrestore"); !os.IsNotExist(err) {
		t.Fatalf("an empty staging root was kept: %v", err)
	}
}

func TestStagedTextOnlyAfterThePush(t *testing.T) {
	r := &Restore{Token: "tok"}
	host := &inventory.Host{Name: "h1"}
	r.Members = []inventory.EtcdMember{{Host: host}}
	r.Host("h1").Etcd = &etcdhost.EtcdFacts{Config: &etcdhost.EtcdConfig{DataDir: "/var/lib/etcd"}}
	actions := Actions(r)
	pb := &orchestrator.Playbook{Steps: []orchestrator.Step{{Name: "stop", Action: "systemd"}, {Name: "push", Action: "push-snapshot"}, {Name: "health", Action: "etcd-health"}}}
	env := &orchestrator.Env{Playbook: pb, Actions: actions}
	if s := StagedText(env, r, 0); s != "" {
		t.Fatalf("before the push: %q", s)
	}
	if s := StagedText(env, r, 2); !strings.Contains(s, "h1: /var/lib/etcd/.ezrestore/tok") {
		t.Fatalf("after the push: %q", s)
	}
}
