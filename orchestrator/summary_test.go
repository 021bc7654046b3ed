package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/inventory"
)

// notingAction plans like echoAction and adds what real steps add: a note
// for the step, a note per host with its command, checks per host.
type notingAction struct{ echoAction }

func (a notingAction) Plan(ctx context.Context, env *Env, step *Step, hosts []*inventory.Host) (*StepPlan, error) {
	sp, err := a.echoAction.Plan(ctx, env, step, hosts)
	if err != nil {
		return nil, err
	}
	sp.Notes = append(sp.Notes, "order: the leader last")
	for _, t := range sp.Tasks {
		sp.Notes = append(sp.Notes, t.Host+": systemctl stop --no-block -- etcd")
		t.Checks = []string{"ssh as root", "units present"}
	}
	return sp, nil
}

const summaryPlaybook = `
steps:
  - name: preflight
    action: test-note
    hosts: [etcd, kube_node]
    unreachable: skip
  - name: stop kubelet
    action: test-echo
    hosts: [kube_node]
    unreachable: skip
    background: true
    finish_before: stop etcd
  - name: stop etcd
    action: test-note
    hosts: [etcd]
`

// summaryFor plans summaryPlaybook for 3 etcd hosts and n workers, two of
// them unreachable, and returns the summary and the whole plan's text.
func summaryFor(t *testing.T, workers int) (summary, whole string) {
	t.Helper()
	actions := Registry{"test-echo": echoAction{}, "test-note": notingAction{}}
	pb, err := ParsePlaybook([]byte(summaryPlaybook), "test.yml", actions)
	if err != nil {
		t.Fatal(err)
	}
	inv := &inventory.Inventory{File: "hosts"}
	for i := 1; i <= 3; i++ {
		inv.Hosts = append(inv.Hosts, &inventory.Host{Name: fmt.Sprintf("e%d", i), Groups: []string{"etcd"}})
	}
	for i := 1; i <= workers; i++ {
		inv.Hosts = append(inv.Hosts, &inventory.Host{Name: fmt.Sprintf("w%d", i), Groups: []string{"kube_node"}})
	}
	env := &Env{Inventory: inv, Playbook: pb, Actions: actions, Conns: fakeConns{}, Out: &bytes.Buffer{},
		Unreachable: map[string]error{"w1": errors.New("connection refused"), "w2": errors.New("connection refused")}}
	plan, err := BuildPlan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	plan.Warnings = append(plan.Warnings, "an even number of members")
	var s, w bytes.Buffer
	plan.WriteSummary(&s)
	plan.WriteText(&w)
	return s.String(), w.String()
}

func TestSummaryDoesNotGrowWithWorkers(t *testing.T) {
	small, smallWhole := summaryFor(t, 3)
	big, bigWhole := summaryFor(t, 100)
	lines := func(s string) int { return strings.Count(s, "\n") }
	t.Logf("summary, 3 workers (%d lines; whole plan %d):\n%s", lines(small), lines(smallWhole), small)
	t.Logf("summary, 100 workers (%d lines; whole plan %d):\n%s", lines(big), lines(bigWhole), big)
	if lines(small) != lines(big) {
		t.Errorf("the summary grew with the workers: %d lines for 3, %d for 100", lines(small), lines(big))
	}
	// The whole plan does grow: the summary is not the same text.
	if lines(bigWhole) <= lines(smallWhole) {
		t.Errorf("the whole plan should list every worker: %d lines for 3, %d for 100", lines(smallWhole), lines(bigWhole))
	}
	for _, want := range []string{
		"Unreachable, left out: w1, w2 (connection refused)",
		"Warning: an even number of members",
		"1. preflight: test-note on etcd, kube_node: 101 hosts (e1, e2, e3, ... and 98 more), at once",
		"skipped on w1, w2: unreachable",
		"2. stop kubelet: test-echo on kube_node: 98 hosts (w3, w4, w5, ... and 95 more), at once; in the background",
		"3. stop etcd: test-note on etcd: e1, e2, e3, at once",
		"note: order: the leader last",
	} {
		if !strings.Contains(big, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	// Commands and per-host notes are left to the whole plan.
	for _, not := range []string{"systemctl stop", "$ "} {
		if strings.Contains(big, not) {
			t.Errorf("summary shows %q, a command the whole plan has", not)
		}
	}
	if !strings.Contains(bigWhole, "e1: systemctl stop --no-block -- etcd") {
		t.Errorf("the whole plan lost the per-host note")
	}
}
