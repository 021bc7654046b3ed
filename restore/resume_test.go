package restore

import (
	"testing"

	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/playbooks"
	"github.com/ezrestore/ezrestore/steps"
)

// builtinSession is a Session over the built-in playbook, planned as data only.
func builtinSession(t *testing.T) *Session {
	t.Helper()
	actions := steps.Actions(&steps.Restore{})
	pb, err := orchestrator.ParsePlaybook(playbooks.Restore, playbooks.RestoreName, actions)
	if err != nil {
		t.Fatal(err)
	}
	plan := &orchestrator.Plan{}
	for i, st := range pb.Steps {
		plan.Steps = append(plan.Steps, &orchestrator.StepPlan{Index: i, Name: st.Name, Action: st.Action, Background: st.Background, FinishBefore: st.FinishBefore})
	}
	return &Session{Env: &orchestrator.Env{Playbook: pb, Actions: actions}, Plan: &Plan{Plan: plan}}
}

func recapOf(statuses map[string]string) *orchestrator.Recap {
	r := &orchestrator.Recap{}
	for name, st := range statuses {
		r.Steps = append(r.Steps, orchestrator.StepRecap{Name: name, Status: st})
	}
	return r
}

// Where a run that stopped goes on, with the push beside the stops and the
// kubelets' stop across the swap.
func TestResumeFromAFailedBackgroundStep(t *testing.T) {
	s := builtinSession(t)
	step := func(name string) *orchestrator.StepPlan {
		t.Helper()
		i, err := s.Env.Playbook.StepIndex(name)
		if err != nil {
			t.Fatal(err)
		}
		return s.Plan.Steps[i]
	}
	if s.besideSwap(step("push snapshot")) {
		t.Error("the push ends before the restore, before the swap: it can run again from itself")
	}
	if !s.besideSwap(step("stop kubelet and kube-proxy")) {
		t.Error("the kubelets' stop is waited for after the swap: running again from it would swap twice")
	}
	if s.besideSwap(step("start kube masters")) || s.besideSwap(step("stop etcd")) {
		t.Error("a step after the swap, or one in the foreground, is not beside it")
	}
	ok, failed := orchestrator.StepOK, orchestrator.StepFailed
	for _, c := range []struct {
		name, at string
		recap    map[string]string
		want     string
	}{
		{"the push failed where the restore waits for it", "push snapshot",
			map[string]string{"push snapshot": failed, "stop etcd": ok}, "push snapshot"},
		{"a stop failed and the push beside it too", "stop etcd",
			map[string]string{"push snapshot": failed, "stop etcd": failed}, "push snapshot"},
		{"a stop failed, the push went through", "stop etcd",
			map[string]string{"push snapshot": ok, "stop etcd": failed}, "stop etcd"},
		{"Ctrl-C after the stops, the push failed", "restore snapshot",
			map[string]string{"push snapshot": failed, "stop etcd": ok}, "push snapshot"},
		{"the kubelets' stop failed: not resumed from (the swap ran)", "wait for etcd health",
			map[string]string{"stop kubelet and kube-proxy": failed, "swap data dirs": ok}, "wait for etcd health"},
		{"nothing failed beside", "wait for etcd health",
			map[string]string{"push snapshot": ok}, "wait for etcd health"},
	} {
		if got := s.resumeFrom(c.at, recapOf(c.recap)); got != c.want {
			t.Errorf("%s: resume from %q, want %q", c.name, got, c.want)
		}
	}
}
