package orchestrator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/internal/syncbuf"
	"github.com/ezrestore/ezrestore/transport"
)

// DefaultForks is how many hosts work at once when the caller sets no bound.
const DefaultForks = 20

// Run executes the plan from plan.FromStep on, step by step. Tasks of a step
// run on all its hosts at once (up to Env.Forks); a failure stops the run after
// that step. Cancelling ctx stops between steps: a step in flight finishes,
// because half a step (a data dir half swapped) is worse than a late stop.
//
// A background step (StepPlan.Background) is started and left running while
// the steps after it run; its lines are held and printed, in one block, when
// the run waits for it: before the step it must finish before, at the end of
// the run, or when the run stops early (a failure or an interrupt never
// leaves one running). Its failure stops the run there, as any step's does.
func Run(ctx context.Context, env *Env, plan *Plan) (*Recap, error) {
	recap := &Recap{Hosts: map[string]*HostRecap{}}
	if env.Out != nil {
		// The tasks of a step, and a background step's end, print at once.
		out := env.Out
		env.Out = &syncbuf.Writer{W: out}
		defer func() { env.Out = out }()
	}
	var running []*background
	// join waits for the background steps that must finish before the step
	// named next ("" for all), prints them and notes them in the recap.
	join := func(next string) error {
		var firstErr error
		kept := running[:0]
		for _, b := range running {
			if next != "" && b.sp.FinishBefore != next {
				kept = append(kept, b)
				continue
			}
			<-b.done
			env.Printf("\nSTEP [%s] finished in the background (%.2fs) %s\n", b.sp.Name, b.d.Seconds(), strings.Repeat("*", max(3, 36-len(b.sp.Name))))
			env.Printf("%s", b.out.String())
			b.finish(env, recap)
			if b.err != nil && firstErr == nil {
				firstErr = b.err
			}
		}
		running = kept
		return firstErr
	}
	stop := func(err error) (*Recap, error) {
		if bgErr := join(""); err == nil {
			err = bgErr
		}
		recap.sortSteps(plan)
		return recap, err
	}
	started := plan.FromStep == ""
	for _, sp := range plan.Steps {
		if !started && sp.Name == plan.FromStep {
			started = true
		}
		if !started {
			recap.Steps = append(recap.Steps, StepRecap{Name: sp.Name, Status: StepBefore})
			continue
		}
		if err := join(sp.Name); err != nil {
			return stop(err)
		}
		if ctx.Err() != nil {
			env.Record.Event(Event{Step: sp.Name, Status: "interrupted"})
			return stop(&InterruptedError{NextStep: sp.Name})
		}
		if sp.Background {
			env.Printf("\nSTEP [%s] %s\n  %s\n", sp.Name, strings.Repeat("*", max(3, 60-len(sp.Name))), sp.BackgroundText())
			running = append(running, startBackground(ctx, env, sp, recap))
			continue
		}
		t0 := time.Now()
		env.Printf("\nSTEP [%s] %s\n", sp.Name, strings.Repeat("*", max(3, 60-len(sp.Name))))
		env.Record.Event(Event{Step: sp.Name, Status: "start"})
		err := runStep(ctx, env, sp, recap)
		status := StepOK
		if err != nil {
			status = StepFailed
		}
		d := time.Since(t0)
		recap.Steps = append(recap.Steps, StepRecap{Name: sp.Name, Status: status, Duration: d})
		env.Record.Event(Event{Step: sp.Name, Status: "end:" + status, Duration: d.Seconds()})
		if err != nil {
			return stop(err)
		}
	}
	return stop(nil)
}

// background is a step running beside the ones after it.
type background struct {
	sp   *StepPlan
	out  syncbuf.Buffer
	done chan struct{}
	err  error
	d    time.Duration
}

// startBackground runs sp in a goroutine with its own output buffer.
func startBackground(ctx context.Context, env *Env, sp *StepPlan, recap *Recap) *background {
	b := &background{sp: sp, done: make(chan struct{})}
	benv := *env
	benv.Out = &b.out
	env.Record.Event(Event{Step: sp.Name, Status: "start"})
	go func() {
		defer close(b.done)
		t0 := time.Now()
		b.err = runStep(ctx, &benv, sp, recap)
		b.d = time.Since(t0)
		status := StepOK
		if b.err != nil {
			status = StepFailed
		}
		env.Record.Event(Event{Step: sp.Name, Status: "end:" + status, Duration: b.d.Seconds()})
	}()
	return b
}

// finish notes a joined background step in the recap.
func (b *background) finish(env *Env, recap *Recap) {
	status := StepOK
	if b.err != nil {
		status = StepFailed
	}
	recap.Steps = append(recap.Steps, StepRecap{Name: b.sp.Name, Status: status, Duration: b.d})
}

func runStep(ctx context.Context, env *Env, sp *StepPlan, recap *Recap) error {
	// The step's actions see it in their Env (RunOnHosts records under it).
	senv := *env
	senv.step = sp
	env = &senv
	one := func(t *Task) error {
		label := t.Host
		if label == "" {
			label = "cluster"
		}
		switch {
		case t.Skip != "":
			env.Printf("skipped: [%s] %s\n", label, t.Skip)
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "skipped", Message: t.Skip})
			recap.note(t.Host, func(h *HostRecap) { h.Skipped++ }, 0)
			return nil
		case sp.DoneAtPlan:
			// One line for the step (below), not one per host: the
			// checks were shown with the plan and each is in the record.
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "ok", Message: "checked while planning"})
			recap.note(t.Host, func(h *HostRecap) { h.OK++ }, 0)
			return nil
		}
		t0 := time.Now()
		changed, msg, err := runTask(ctx, env, sp, t)
		d := time.Since(t0)
		switch {
		case err != nil:
			env.Printf("failed: [%s] (%.2fs) %v\n", label, d.Seconds(), err)
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "failed", Message: err.Error(), Duration: d.Seconds()})
			recap.note(t.Host, func(h *HostRecap) { h.Failed++ }, d)
			return &transport.HostError{Host: t.Host, Err: err}
		case changed:
			env.Printf("changed: [%s] (%.2fs)%s\n", label, d.Seconds(), prefixed(msg))
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "changed", Message: msg, Duration: d.Seconds()})
			recap.note(t.Host, func(h *HostRecap) { h.Changed++ }, d)
		default:
			env.Printf("ok: [%s] (%.2fs)%s\n", label, d.Seconds(), prefixed(msg))
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "ok", Message: msg, Duration: d.Seconds()})
			recap.note(t.Host, func(h *HostRecap) { h.OK++ }, d)
		}
		return nil
	}
	forks := env.Forks
	if forks <= 0 {
		forks = DefaultForks
	}
	if !sp.Parallel {
		forks = 1
	}
	// Tasks are not cancelled with ctx once started (see runTask); a Ctrl-C
	// stops the run between steps, so every task of a step is started.
	errs := fanout.Each(context.WithoutCancel(ctx), len(sp.Tasks), forks, func(_ context.Context, i int) error {
		return one(sp.Tasks[i])
	})
	if sp.DoneAtPlan {
		n, checks := 0, 0
		for _, t := range sp.Tasks {
			if t.Skip == "" {
				n, checks = n+1, checks+len(t.Checks)
			}
		}
		env.Printf("ok: %d hosts checked while planning (%d checks)\n", n, checks)
	}
	var failures []*transport.HostError
	for _, err := range errs {
		if err != nil {
			failures = append(failures, err.(*transport.HostError))
		}
	}
	if len(failures) > 0 {
		sort.Slice(failures, func(i, j int) bool { return failures[i].Host < failures[j].Host })
		return &StepError{Step: sp.Name, Index: sp.Index, Failures: failures}
	}
	return nil
}

func prefixed(msg string) string {
	if msg == "" {
		return ""
	}
	return " " + msg
}

// runTask runs a task's ops in order and stops at the first failure.
// Commands run on a context that Ctrl-C does not cancel (see Run); ops of an
// action's own kind (waits, questions) get the cancellable one.
func runTask(ctx context.Context, env *Env, sp *StepPlan, t *Task) (changed bool, msg string, err error) {
	var conn transport.Conn
	if t.Host != "" {
		if conn, err = env.Conn(t.Host); err != nil {
			return false, "", err
		}
	}
	steady := context.WithoutCancel(ctx)
	var msgs []string
	for _, op := range t.Ops {
		var res OpResult
		switch op.Kind {
		case OpRun:
			res, err = runOp(steady, conn, op)
		default:
			exec, ok := env.Actions[sp.Action].(Executor)
			if !ok {
				return changed, "", fmt.Errorf("op kind %q: action %q has no executor for it", op.Kind, sp.Action)
			}
			res, err = exec.Exec(ctx, env, t, op, conn)
		}
		env.Record.Output(sp.Index, sp.Name, t.Host, op, res)
		if err != nil {
			return changed, strings.Join(msgs, "; "), err
		}
		if res.Message != "" {
			msgs = append(msgs, res.Message)
		}
		changed = changed || op.Changes
	}
	return changed, strings.Join(msgs, "; "), nil
}

// HostRun is one host's part of RunOnHosts.
type HostRun struct {
	Host   string
	Result OpResult
	// Err says what failed; it does not name the host (callers name it once).
	Err error
}

// RunOnHosts runs, on each host at once (up to Forks), the command op(host)
// gives, and records each as the runner records a task of the running step:
// its output in outputs/ and one event for the host ("changed" or "ok" as
// the op says, or "failed"). It is for an action whose one op works on
// several hosts in phases decided at run time (etcd-stop asks who leads,
// then stops the followers before the leader), so that no action writes the
// record by hand. Once started, the commands run to their end even when ctx
// is cancelled, as a step's commands do: a Ctrl-C stops between steps.
func (e *Env) RunOnHosts(ctx context.Context, hosts []string, op func(host string) (*Op, error)) []HostRun {
	out := make([]HostRun, len(hosts))
	forks := e.Forks
	if forks <= 0 {
		forks = DefaultForks
	}
	step, index := "", 0
	if e.step != nil {
		step, index = e.step.Name, e.step.Index
	}
	fanout.Each(context.WithoutCancel(ctx), len(hosts), forks, func(ctx context.Context, i int) error {
		h := hosts[i]
		out[i].Host = h
		o, err := op(h)
		if err != nil {
			out[i].Err = err
			e.Record.Event(Event{Step: step, Host: h, Status: "failed", Message: err.Error()})
			return nil
		}
		t0 := time.Now()
		conn, err := e.Conn(h)
		var res OpResult
		if err == nil {
			res, err = runOp(ctx, conn, o)
		}
		e.Record.Output(index, step, h, o, res)
		ev := Event{Step: step, Host: h, Status: "ok", Message: o.Desc, Duration: time.Since(t0).Seconds()}
		switch {
		case err != nil:
			ev.Status, ev.Message = "failed", err.Error()
		case o.Changes:
			ev.Status = "changed"
		}
		if err == nil && res.Message != "" {
			ev.Message += ": " + res.Message
		}
		e.Record.Event(ev)
		out[i].Result, out[i].Err = res, err
		return nil
	})
	return out
}

func runOp(ctx context.Context, conn transport.Conn, op *Op) (OpResult, error) {
	r, err := conn.Run(ctx, op.Cmd)
	res := OpResult{Stdout: string(r.Stdout), Stderr: string(r.Stderr), ExitCode: r.ExitCode, Duration: r.Duration}
	if err != nil {
		return res, err
	}
	res.Message = notes(res.Stdout)
	if r.ExitCode != 0 {
		what := op.Desc
		if what == "" {
			what = firstCmdLine(op.Cmd)
		}
		return res, fmt.Errorf("%s: exit status %d%s", what, r.ExitCode, tail(res.Stderr, res.Stdout))
	}
	return res, nil
}

func firstCmdLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// tail is the last few lines of what a failed command said, for its error.
func tail(stderr, stdout string) string {
	s := strings.TrimSpace(stderr)
	if s == "" {
		s = strings.TrimSpace(stdout)
	}
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return ":\n    " + strings.Join(lines, "\n    ")
}

// notes are the lines a command printed for the operator ("note: ..."):
// what it found on the host and did about it.
func notes(stdout string) string {
	var out []string
	for _, l := range strings.Split(stdout, "\n") {
		if n, ok := strings.CutPrefix(l, "note: "); ok {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}
