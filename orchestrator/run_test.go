package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// fakeConn records commands; a command containing "fail" exits 1.
type fakeConn struct {
	h   *inventory.Host
	mu  *sync.Mutex
	log *[]string
	// hook, when set, runs after the command is logged (a test holds a
	// command there).
	hook func(cmd string)
}

func (c fakeConn) Host() *inventory.Host { return c.h }
func (c fakeConn) Run(ctx context.Context, cmd string) (transport.Result, error) {
	c.mu.Lock()
	*c.log = append(*c.log, c.h.Name+": "+cmd)
	c.mu.Unlock()
	if c.hook != nil {
		c.hook(cmd)
	}
	if strings.Contains(cmd, "fail") {
		return transport.Result{ExitCode: 1, Stderr: []byte("it failed")}, nil
	}
	return transport.Result{}, nil
}
func (c fakeConn) Upload(context.Context, string, string, os.FileMode, func(int64)) error { return nil }
func (c fakeConn) Download(context.Context, string, string, func(int64)) error            { return nil }
func (c fakeConn) Close() error                                                           { return nil }

type fakeConns map[string]transport.Conn

func (f fakeConns) Get(h string) (transport.Conn, bool) { c, ok := f[h]; return c, ok }

// echoAction runs params.cmd on every host.
type echoAction struct{}

func (echoAction) Plan(ctx context.Context, env *Env, step *Step, hosts []*inventory.Host) (*StepPlan, error) {
	cmd, _ := step.Params.String("cmd", "true")
	sp := &StepPlan{Parallel: true}
	for _, h := range hosts {
		sp.Tasks = append(sp.Tasks, &Task{Host: h.Name, Ops: []*Op{{Kind: OpRun, Cmd: cmd + " " + transport.Quote(h.Name), Changes: true}}})
	}
	return sp, nil
}

var testActions = Registry{"test-echo": echoAction{}}

func testEnv(t *testing.T, playbook string) (*Env, *[]string) {
	t.Helper()
	pb, err := ParsePlaybook([]byte(playbook), "test.yml", testActions)
	if err != nil {
		t.Fatal(err)
	}
	inv := &inventory.Inventory{File: "hosts"}
	for _, h := range []struct{ name, group string }{{"e1", "etcd"}, {"e2", "etcd"}, {"w1", "kube_node"}, {"w2", "kube_node"}} {
		inv.Hosts = append(inv.Hosts, &inventory.Host{Name: h.name, Groups: []string{h.group}})
	}
	log := &[]string{}
	mu := &sync.Mutex{}
	conns := fakeConns{}
	for _, h := range inv.Hosts {
		conns[h.Name] = fakeConn{h: h, mu: mu, log: log}
	}
	return &Env{Inventory: inv, Playbook: pb, Actions: testActions, Conns: conns, Unreachable: map[string]error{}, Out: &bytes.Buffer{}}, log
}

const threeSteps = `
steps:
  - name: one
    action: test-echo
    hosts: [etcd]
    params: {cmd: first}
  - name: two
    action: test-echo
    hosts: [kube_node]
    unreachable: skip
    params: {cmd: second}
  - name: three
    action: test-echo
    hosts: [etcd, kube_node]
    params: {cmd: third}
`

func TestRunOrderAndRecap(t *testing.T) {
	env, log := testEnv(t, threeSteps)
	plan, err := BuildPlan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	recap, err := Run(context.Background(), env, plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(*log) != 2+2+4 {
		t.Fatalf("ran %d commands: %q", len(*log), *log)
	}
	// Steps never overlap: every "first" precedes every "second", and so on.
	last := map[string]int{}
	for i, l := range *log {
		last[strings.Fields(l)[1]] = i
	}
	for i, l := range *log {
		w := strings.Fields(l)[1]
		if w == "second" && i < last["first"] || w == "third" && i < last["second"] {
			t.Fatalf("steps overlapped: %q", *log)
		}
	}
	if c := recap.Hosts["e1"]; c.Changed != 2 || c.Failed != 0 {
		t.Fatalf("recap e1 %+v", c)
	}
}

func TestUnreachableWorkerSkippedEtcdFatal(t *testing.T) {
	env, log := testEnv(t, strings.Replace(threeSteps, "hosts: [etcd, kube_node]", "hosts: [etcd]", 1))
	env.Unreachable["w2"] = errors.New("connection refused")
	plan, err := BuildPlan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	recap, err := Run(context.Background(), env, plan)
	if err != nil {
		t.Fatal(err)
	}
	if recap.Hosts["w2"].Skipped != 1 {
		t.Fatalf("w2 should be skipped once: %+v", recap.Hosts["w2"])
	}
	for _, l := range *log {
		if strings.HasPrefix(l, "w2:") {
			t.Fatalf("ran on unreachable w2: %s", l)
		}
	}
	// An unreachable etcd host stops planning: nothing runs at all.
	env, log = testEnv(t, threeSteps)
	env.Unreachable["e2"] = errors.New("no route")
	if _, err := BuildPlan(context.Background(), env); err == nil || !strings.Contains(err.Error(), "e2") {
		t.Fatalf("want a planning error naming e2, got %v", err)
	}
	if len(*log) != 0 {
		t.Fatalf("commands ran: %q", *log)
	}
}

func TestFailureStopsAfterTheStepAndNamesHost(t *testing.T) {
	env, log := testEnv(t, strings.Replace(threeSteps, "cmd: second", "cmd: fail", 1))
	plan, err := BuildPlan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), env, plan)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "two" || !strings.Contains(err.Error(), "host w1") || !strings.Contains(err.Error(), "it failed") ||
		strings.Count(err.Error(), "host w1") != 1 || strings.Contains(err.Error(), "error occurred") {
		t.Fatalf("want step two failing on w1 and w2, got %v", err)
	}
	for _, l := range *log {
		if strings.Contains(l, "third") {
			t.Fatalf("a step after the failure ran: %q", *log)
		}
	}
}

func TestFromStepAndInterrupt(t *testing.T) {
	env, log := testEnv(t, threeSteps)
	plan, _ := BuildPlan(context.Background(), env)
	plan.FromStep = "three"
	if _, err := Run(context.Background(), env, plan); err != nil {
		t.Fatal(err)
	}
	for _, l := range *log {
		if !strings.Contains(l, "third") {
			t.Fatalf("a step before --from-step ran: %s", l)
		}
	}
	env, log = testEnv(t, threeSteps)
	plan, _ = BuildPlan(context.Background(), env)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, env, plan)
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.NextStep != "one" || len(*log) != 0 {
		t.Fatalf("want a stop before step one, got %v, ran %q", err, *log)
	}
}

func TestParsePlaybookErrorsNameLine(t *testing.T) {
	for _, c := range []struct{ yml, want string }{
		{"steps:\n  - name: a\n    action: nope\n", "test.yml:2: step \"a\": unknown action \"nope\""},
		{"steps:\n  - name: a\n    action: test-echo\n  - name: a\n    action: test-echo\n", "test.yml:4: step name \"a\" is used twice"},
		{"steps: []\n", "no steps"},
		{"steps:\n  - action: test-echo\n", "test.yml:2: step 1 has no name"},
		{"steps:\n  - name: a\n    action: test-echo\n    unreachable: maybe\n", "unreachable must be fail or skip"},
		{"steps:\n  - name: a\n    action: test-echo\n    finish_before: b\n  - name: b\n    action: test-echo\n", "test.yml:2: step \"a\": finish_before is for background steps"},
		{"steps:\n  - name: a\n    action: test-echo\n  - name: b\n    action: test-echo\n    background: true\n    finish_before: a\n", "test.yml:4: step \"b\": finish_before names \"a\", which comes before it"},
		{"steps:\n  - name: a\n    action: test-echo\n    background: true\n    finish_before: zz\n", "test.yml:2: step \"a\": finish_before: no step named \"zz\""},
	} {
		_, err := ParsePlaybook([]byte(c.yml), "test.yml", testActions)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: want %q, got %v", c.yml, c.want, err)
		}
	}
}

func TestPlanTextShowsEveryCommand(t *testing.T) {
	env, _ := testEnv(t, threeSteps)
	plan, _ := BuildPlan(context.Background(), env)
	var b bytes.Buffer
	plan.WriteText(&b)
	for _, h := range []string{"e1", "e2", "w1", "w2"} {
		if !strings.Contains(b.String(), fmt.Sprintf("%s: $ third %s", h, h)) {
			t.Fatalf("plan lacks the command for %s:\n%s", h, b.String())
		}
	}
}

func TestStepErrorReadsAsSentences(t *testing.T) {
	one := &StepError{Step: "stop etcd", Failures: []*transport.HostError{{Host: "e1", Err: errors.New("exit status 1")}}}
	if got, want := one.Error(), `step "stop etcd" failed on host e1: exit status 1`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	two := &StepError{Step: "stop etcd", Failures: []*transport.HostError{{Host: "e1", Err: errors.New("a")}, {Host: "e2", Err: errors.New("b\nc")}}}
	if got, want := two.Error(), "step \"stop etcd\" failed on 2 hosts:\n  - host e1: a\n  - host e2: b\n    c"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var he *transport.HostError
	if !errors.As(error(two), &he) || he.Host != "e1" {
		t.Errorf("errors.As finds the host errors of a StepError")
	}
}

func TestReadEventsDecodesTheRecord(t *testing.T) {
	rec, err := NewRecord(t.TempDir(), "run1")
	if err != nil {
		t.Fatal(err)
	}
	rec.Event(Event{Step: "one", Host: "e1", Status: "ok", Message: `a "changed" in a message is not a change`})
	evs, err := ReadEvents(rec.Dir)
	if err != nil || len(evs) != 1 || Changed(evs) {
		t.Fatalf("ReadEvents = %v, %v; a message mentioning \"changed\" is no change", evs, err)
	}
	rec.Event(Event{Step: "two", Host: "e1", Status: "changed"})
	rec.Close()
	if evs, err = ReadEvents(rec.Dir); err != nil || !Changed(evs) {
		t.Fatalf("ReadEvents = %v, %v; want a change", evs, err)
	}
	if rec.Err() != nil {
		t.Fatalf("record error %v", rec.Err())
	}
	rec.Event(Event{Status: "after close"})
	if rec.Err() == nil {
		t.Fatal("a failed event write is not reported by Err")
	}
}

const backgroundSteps = `
steps:
  - name: one
    action: test-echo
    hosts: [kube_node]
    background: true
    finish_before: three
    params: {cmd: slow}
  - name: two
    action: test-echo
    hosts: [etcd]
    params: {cmd: second}
  - name: three
    action: test-echo
    hosts: [etcd, kube_node]
    params: {cmd: third}
`

// gate holds every "slow" command until the first "second" one has run, so
// a background step provably overlaps the step after it (a run that waited
// for it would hang here, and the test time out).
func gate(env *Env) {
	released := make(chan struct{})
	var once sync.Once
	for name, c := range env.Conns.(fakeConns) {
		fc := c.(fakeConn)
		fc.hook = func(cmd string) {
			switch {
			case strings.HasPrefix(cmd, "slow"):
				<-released
			case strings.HasPrefix(cmd, "second"):
				once.Do(func() { close(released) })
			}
		}
		env.Conns.(fakeConns)[name] = fc
	}
}

func TestBackgroundStepRunsBesideTheNextAndFinishesBefore(t *testing.T) {
	env, log := testEnv(t, backgroundSteps)
	gate(env)
	plan, err := BuildPlan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	recap, err := Run(context.Background(), env, plan)
	if err != nil {
		t.Fatal(err)
	}
	firstThird, lastSlow := -1, -1
	for i, l := range *log {
		switch strings.Fields(l)[1] {
		case "third":
			if firstThird < 0 {
				firstThird = i
			}
		case "slow":
			lastSlow = i
		}
	}
	if firstThird < lastSlow {
		t.Fatalf("step three started before the background step it must wait for had run everywhere: %q", *log)
	}
	var names []string
	for _, st := range recap.Steps {
		names = append(names, st.Name+"="+st.Status)
	}
	if got := strings.Join(names, " "); got != "one=ok two=ok three=ok" {
		t.Fatalf("recap steps %s, want playbook order, all ok", got)
	}
	out := env.Out.(*bytes.Buffer).String()
	if !strings.Contains(out, `"three" waits for it`) || !strings.Contains(out, "STEP [one] finished in the background") {
		t.Fatalf("output does not say the step ran in the background:\n%s", out)
	}
	// Its host lines are printed together, after the line that says it finished.
	fin := strings.Index(out, "finished in the background")
	if i := strings.Index(out, "changed: [w1]"); i < fin {
		t.Fatalf("a background step's host line was printed before it finished:\n%s", out)
	}
	var pt bytes.Buffer
	plan.WriteText(&pt)
	if !strings.Contains(pt.String(), `[1/3] one  (test-echo on kube_node; in the background: the steps after it go on, "three" waits for it)`) {
		t.Fatalf("plan text does not show the background step:\n%s", pt.String())
	}
}

func TestBackgroundFailureStopsTheRunWhereItIsWaitedFor(t *testing.T) {
	env, log := testEnv(t, strings.Replace(backgroundSteps, "cmd: slow", "cmd: slow fail", 1))
	gate(env)
	plan, _ := BuildPlan(context.Background(), env)
	recap, err := Run(context.Background(), env, plan)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "one" || !strings.Contains(err.Error(), "host w1") {
		t.Fatalf("want step one failing on w1 and w2, got %v", err)
	}
	for _, l := range *log {
		if strings.Contains(l, "third") {
			t.Fatalf("the step that waits for the failed background step ran: %q", *log)
		}
	}
	if len(recap.Steps) != 2 || recap.Steps[0].Status != StepFailed || recap.Steps[1].Status != StepOK {
		t.Fatalf("recap %+v: want one failed, two ok", recap.Steps)
	}
}

func TestBackgroundStepIsWaitedForWhenTheRunStopsEarly(t *testing.T) {
	// Step two fails while one is still held: Run must not return before one
	// has finished (its commands are never abandoned mid-flight).
	env, log := testEnv(t, strings.Replace(backgroundSteps, "cmd: second", "cmd: second fail", 1))
	gate(env)
	plan, _ := BuildPlan(context.Background(), env)
	recap, err := Run(context.Background(), env, plan)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "two" {
		t.Fatalf("want step two's failure, got %v", err)
	}
	slow := 0
	for _, l := range *log {
		if strings.Contains(l, "slow") {
			slow++
		}
	}
	if slow != 2 || len(recap.Steps) != 2 || recap.Steps[0].Name != "one" || recap.Steps[0].Status != StepOK {
		t.Fatalf("the background step was not waited for: %d slow commands, recap %+v", slow, recap.Steps)
	}
}
