package orchestrator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// phasedAction's one op runs a command on every host of the step through
// RunOnHosts, as etcd-stop does.
type phasedAction struct{ runs *[]HostRun }

func (phasedAction) Plan(ctx context.Context, env *Env, step *Step, hosts []*inventory.Host) (*StepPlan, error) {
	return &StepPlan{Tasks: []*Task{{Ops: []*Op{{Kind: "phased", Desc: "all hosts in one op", Changes: true}}}}}, nil
}

func (a phasedAction) Exec(ctx context.Context, env *Env, t *Task, op *Op, _ transport.Conn) (OpResult, error) {
	*a.runs = env.RunOnHosts(ctx, []string{"e1", "e2"}, func(h string) (*Op, error) {
		cmd := "stop"
		if h == "e2" {
			cmd = "fail-stop"
		}
		return &Op{Kind: OpRun, Desc: "phase one", Cmd: cmd, Changes: true}, nil
	})
	return OpResult{Message: "done"}, nil
}

// Commands an action runs through RunOnHosts are recorded under the running
// step as the runner records its own: the output per host, an event per
// host, a failure with what failed.
func TestRunOnHostsRecordsLikeATask(t *testing.T) {
	var runs []HostRun
	testActions["test-phased"] = phasedAction{&runs}
	defer delete(testActions, "test-phased")
	env, log := testEnv(t, "steps:\n  - name: first\n    action: test-echo\n    hosts: [etcd]\n  - name: stop them\n    action: test-phased\n    hosts: [etcd]\n")
	rec, err := NewRecord(t.TempDir(), "run1")
	if err != nil {
		t.Fatal(err)
	}
	env.Record = rec
	plan, err := BuildPlan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), env, plan); err != nil {
		t.Fatal(err)
	}
	rec.Close()
	if len(*log) != 4 || len(runs) != 2 || runs[0].Err != nil || runs[1].Err == nil || !strings.Contains(runs[1].Err.Error(), "it failed") {
		t.Fatalf("ran %q, results %+v", *log, runs)
	}
	evs, err := ReadEvents(rec.Dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range evs {
		if e.Step == "stop them" && e.Host != "" {
			got[e.Host] = e.Status + " " + e.Message
		}
	}
	if !strings.HasPrefix(got["e1"], "changed phase one") || !strings.HasPrefix(got["e2"], "failed phase one: exit status 1") {
		t.Fatalf("per-host events of the step: %q", got)
	}
	b, err := os.ReadFile(filepath.Join(rec.Dir, "outputs", "02-e2.log"))
	if err != nil || !strings.Contains(string(b), `step "stop them"`) || !strings.Contains(string(b), "$ fail-stop") || !strings.Contains(string(b), "it failed") {
		t.Fatalf("output of e2 in step 2: %q %v", b, err)
	}
}
