package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/ezrestore/ezrestore/inventory"
)

// BuildPlan expands the playbook over the inventory: for each step, the hosts
// of its groups and the exact ops each will run. Only read-only commands run
// while planning; an error here means nothing was changed.
func BuildPlan(ctx context.Context, env *Env) (*Plan, error) {
	pb := env.Playbook
	plan := &Plan{
		Cluster:   env.Cluster,
		Inventory: env.Inventory.File,
		Playbook:  pb.File,
		RunID:     env.RunID,
		Token:     env.Token,
		Snapshot:  env.Snapshot,
		Created:   time.Now().UTC(),
		Warnings:  append([]string(nil), env.Inventory.Warnings...),
	}
	for _, m := range env.Members {
		plan.Members = append(plan.Members, MemberPlan{Host: m.Host.Name, Name: m.Name, PeerURL: m.PeerURL})
	}
	for _, h := range env.Inventory.Hosts {
		if err, bad := env.Unreachable[h.Name]; bad {
			plan.Skipped = append(plan.Skipped, SkippedHost{Host: h.Name, Reason: err.Error()})
		}
	}
	for i := range pb.Steps {
		step := &pb.Steps[i]
		action, _ := LookupAction(step.Action)
		targets := HostsOf(env.Inventory, step.Hosts)
		var reachable []*inventory.Host
		var skipped []*Task
		for _, h := range targets {
			err, bad := env.Unreachable[h.Name]
			switch {
			case !bad:
				reachable = append(reachable, h)
			case step.Unreachable == "skip":
				skipped = append(skipped, &Task{Host: h.Name, Skip: "unreachable: " + err.Error()})
			default:
				return nil, fmt.Errorf("step %q needs host %s (groups %s), which cannot be reached: %v",
					step.Name, h.Name, strings.Join(h.Groups, ","), err)
			}
		}
		if len(step.Hosts) > 0 && len(targets) == 0 {
			plan.Steps = append(plan.Steps, &StepPlan{Index: i, Name: step.Name, Action: step.Action, Groups: step.Hosts,
				Notes: []string{"no hosts in " + strings.Join(step.Hosts, ", ")}})
			continue
		}
		sp, err := action.Plan(ctx, env, step, reachable)
		if err != nil {
			return nil, fmt.Errorf("step %q: %w", step.Name, err)
		}
		sp.Index, sp.Name, sp.Action, sp.Groups = i, step.Name, step.Action, step.Hosts
		sp.Tasks = append(sp.Tasks, skipped...)
		plan.Steps = append(plan.Steps, sp)
	}
	// Steps may have learned per-member facts (the restore tool) while planning.
	for i := range plan.Members {
		if v, ok := env.Fact(plan.Members[i].Host, FactMemberTool); ok {
			plan.Members[i].Tool = v.(string)
		}
		if v, ok := env.Fact(plan.Members[i].Host, FactMemberNotes); ok {
			plan.Members[i].Notes = v.([]string)
		}
	}
	return plan, nil
}

// Facts steps may set for the plan's member table.
const (
	FactMemberTool  = "plan.member.tool"
	FactMemberNotes = "plan.member.notes"
)

// HostsOf returns the hosts of groups, each once, in inventory order.
func HostsOf(inv *inventory.Inventory, groups []string) []*inventory.Host {
	var out []*inventory.Host
	for _, h := range inv.Hosts {
		for _, g := range groups {
			if g == "all" || h.InGroup(g) {
				out = append(out, h)
				break
			}
		}
	}
	return out
}

// StepError says which step failed on which hosts.
type StepError struct {
	Step     string
	Index    int
	Failures *multierror.Error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %q failed: %v", e.Step, e.Failures)
}

func (e *StepError) Unwrap() error { return e.Failures }

// ErrInterrupted is returned when the operator stopped the run between steps.
var ErrInterrupted = errors.New("interrupted")

// InterruptedError says where an interrupted run stopped.
type InterruptedError struct{ NextStep string }

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted before step %q; nothing of that step ran", e.NextStep)
}

func (e *InterruptedError) Unwrap() error { return ErrInterrupted }

// Recap counts what happened per host and per step.
type Recap struct {
	Hosts map[string]*HostRecap
	Steps []StepRecap
}

// HostRecap is one host's line in the recap.
type HostRecap struct {
	OK, Changed, Skipped, Failed int
	Duration                     time.Duration
}

// StepRecap is one step's line in the recap.
type StepRecap struct {
	Name     string
	Status   string
	Duration time.Duration
}

// Run executes the plan from plan.FromStep on, step by step. Tasks of a step
// run on all its hosts at once (up to forks); a failure stops the run after
// that step. Cancelling ctx stops between steps: a step in flight finishes,
// because half a step (a data dir half swapped) is worse than a late stop.
func Run(ctx context.Context, env *Env, plan *Plan) (*Recap, error) {
	recap := &Recap{Hosts: map[string]*HostRecap{}}
	started := plan.FromStep == ""
	for _, sp := range plan.Steps {
		if !started && sp.Name == plan.FromStep {
			started = true
		}
		if !started {
			recap.Steps = append(recap.Steps, StepRecap{Name: sp.Name, Status: "not run (before --from-step)"})
			continue
		}
		if ctx.Err() != nil {
			env.Record.Event(Event{Step: sp.Name, Status: "interrupted"})
			return recap, &InterruptedError{NextStep: sp.Name}
		}
		t0 := time.Now()
		env.Printf("\nSTEP [%s] %s\n", sp.Name, strings.Repeat("*", max(3, 60-len(sp.Name))))
		env.Record.Event(Event{Step: sp.Name, Status: "start"})
		err := runStep(ctx, env, sp, recap)
		status := "ok"
		if err != nil {
			status = "failed"
		}
		d := time.Since(t0)
		recap.Steps = append(recap.Steps, StepRecap{Name: sp.Name, Status: status, Duration: d})
		env.Record.Event(Event{Step: sp.Name, Status: "end:" + status, Duration: d.Seconds()})
		if err != nil {
			return recap, err
		}
	}
	return recap, nil
}

func runStep(ctx context.Context, env *Env, sp *StepPlan, recap *Recap) error {
	var mu sync.Mutex
	var errs *multierror.Error
	note := func(host string, f func(*HostRecap), d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		key := host
		if key == "" {
			key = "(cluster)"
		}
		hr := recap.Hosts[key]
		if hr == nil {
			hr = &HostRecap{}
			recap.Hosts[key] = hr
		}
		f(hr)
		hr.Duration += d
	}
	one := func(t *Task) {
		label := t.Host
		if label == "" {
			label = "cluster"
		}
		switch {
		case t.Skip != "":
			env.Printf("skipped: [%s] %s\n", label, t.Skip)
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "skipped", Message: t.Skip})
			note(t.Host, func(h *HostRecap) { h.Skipped++ }, 0)
			return
		case sp.DoneAtPlan:
			env.Printf("ok: [%s] checked while planning (%d checks)\n", label, len(t.Checks))
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "ok", Message: "checked while planning"})
			note(t.Host, func(h *HostRecap) { h.OK++ }, 0)
			return
		}
		t0 := time.Now()
		changed, msg, err := runTask(ctx, env, sp, t)
		d := time.Since(t0)
		switch {
		case err != nil:
			env.Printf("failed: [%s] (%.2fs) %v\n", label, d.Seconds(), err)
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "failed", Message: err.Error(), Duration: d.Seconds()})
			note(t.Host, func(h *HostRecap) { h.Failed++ }, d)
			mu.Lock()
			errs = multierror.Append(errs, fmt.Errorf("host %s: %w", label, err))
			mu.Unlock()
		case changed:
			env.Printf("changed: [%s] (%.2fs)%s\n", label, d.Seconds(), prefixed(msg))
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "changed", Message: msg, Duration: d.Seconds()})
			note(t.Host, func(h *HostRecap) { h.Changed++ }, d)
		default:
			env.Printf("ok: [%s] (%.2fs)%s\n", label, d.Seconds(), prefixed(msg))
			env.Record.Event(Event{Step: sp.Name, Host: t.Host, Status: "ok", Message: msg, Duration: d.Seconds()})
			note(t.Host, func(h *HostRecap) { h.OK++ }, d)
		}
	}
	forks := env.Opts.Forks
	if forks <= 0 {
		forks = 20
	}
	if !sp.Parallel {
		forks = 1
	}
	sem := make(chan struct{}, forks)
	var wg sync.WaitGroup
	for _, t := range sp.Tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func(t *Task) {
			defer wg.Done()
			defer func() { <-sem }()
			one(t)
		}(t)
	}
	wg.Wait()
	if errs != nil {
		sort.Slice(errs.Errors, func(i, j int) bool { return errs.Errors[i].Error() < errs.Errors[j].Error() })
		return &StepError{Step: sp.Name, Index: sp.Index, Failures: errs}
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
// Commands run on a context that Ctrl-C does not cancel (see Run); waits
// registered by steps (health, confirmation) get the cancellable one.
func runTask(ctx context.Context, env *Env, sp *StepPlan, t *Task) (changed bool, msg string, err error) {
	var conn Conn
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
		case OpUpload:
			res, err = uploadOp(steady, env, conn, op)
		default:
			exec, ok := lookupExecutor(op.Kind)
			if !ok {
				return changed, "", fmt.Errorf("op kind %q has no executor", op.Kind)
			}
			res, err = exec(ctx, env, t, op, conn)
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

func runOp(ctx context.Context, conn Conn, op *Op) (OpResult, error) {
	r, err := conn.Run(ctx, op.Cmd)
	res := OpResult{Stdout: string(r.Stdout), Stderr: string(r.Stderr), ExitCode: r.ExitCode, Duration: r.Duration}
	if err != nil {
		return res, err
	}
	if r.ExitCode != 0 {
		what := op.Desc
		if what == "" {
			what = firstCmdLine(op.Cmd)
		}
		return res, fmt.Errorf("%s: exit status %d%s", what, r.ExitCode, tail(res.Stderr, res.Stdout))
	}
	return res, nil
}

func uploadOp(ctx context.Context, env *Env, conn Conn, op *Op) (OpResult, error) {
	t0 := time.Now()
	var progress func(int64)
	if pr, ok := env.Fact("", FactProgress); ok {
		progress = pr.(func(host string) func(int64))(conn.Host().Name)
	}
	if err := conn.Upload(ctx, op.Local, op.Remote, fileMode(op.Mode), progress); err != nil {
		return OpResult{Duration: time.Since(t0)}, err
	}
	res := OpResult{Duration: time.Since(t0)}
	if op.SHA256 != "" {
		sum, err := RemoteSha256(ctx, conn, op.Remote)
		res.Duration = time.Since(t0)
		if err != nil {
			return res, fmt.Errorf("checking %s after upload: %w", op.Remote, err)
		}
		if sum != op.SHA256 {
			return res, fmt.Errorf("%s arrived damaged: sha256 %s on the host, %s on the bastion", op.Remote, sum, op.SHA256)
		}
		res.Message = "sha256 matches"
	}
	return res, nil
}

// FactProgress, set under host "", is a func(host) func(written) for uploads.
const FactProgress = "progress"

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

// WriteRecap prints the per-host and per-step recap, Ansible style.
func (r *Recap) WriteRecap(w io.Writer) {
	fmt.Fprintln(w, "\nRECAP")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hosts := make([]string, 0, len(r.Hosts))
	for h := range r.Hosts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		c := r.Hosts[h]
		fmt.Fprintf(tw, "  %s\tok=%d\tchanged=%d\tskipped=%d\tfailed=%d\t%.2fs\n", h, c.OK, c.Changed, c.Skipped, c.Failed, c.Duration.Seconds())
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%.2fs\n", s.Name, s.Status, s.Duration.Seconds())
	}
	tw.Flush()
}
