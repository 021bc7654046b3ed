package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/steps"
	"github.com/ezrestore/ezrestore/transport"
)

// RunError is a restore that failed or was interrupted after it started
// changing hosts: the cause, and what to do next.
type RunError struct {
	Err error
	// Advice says where the cluster stands and how to go on or back.
	Advice string
}

func (e *RunError) Error() string { return e.Err.Error() + e.Advice }
func (e *RunError) Unwrap() error { return e.Err }

// Execute runs the plan, keeping a record in <cluster dir>/restores/<run id>/.
func (s *Session) Execute(ctx context.Context) (*orchestrator.Recap, error) {
	env, plan, r := s.Env, s.Plan, s.Restore
	rec, err := orchestrator.NewRecord(s.cluster.RecordDir, env.RunID)
	if err != nil {
		return nil, &unchanged{err}
	}
	defer rec.Close()
	env.Record = rec
	// --from-step depends on these: a record that cannot be written stops the run here.
	pj, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return nil, &unchanged{fmt.Errorf("run record: %w", err)}
	}
	var pt strings.Builder
	plan.WriteText(&pt)
	swapStep := ""
	if i := orchestrator.StepOf[*steps.EtcdSwap](env); i >= 0 {
		swapStep = env.Playbook.Steps[i].Name
	}
	// set-aside.json is what `ezrestore rollback` reads to put the data back.
	sj, err := json.MarshalIndent(r.SetAsideRecord(env.RunID, swapStep), "", "  ")
	if err != nil {
		return nil, &unchanged{fmt.Errorf("run record: %w", err)}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"plan.json", pj}, {"plan.txt", []byte(pt.String())}, {"token", []byte(r.Token + "\n")}, {"set-aside.txt", []byte(SetAsideText(r))}, {"set-aside.json", sj}} {
		if err := rec.WriteFile(f.name, f.data); err != nil {
			return nil, &unchanged{fmt.Errorf("run record %s: %w", rec.Dir, err)}
		}
	}
	if s.Lock != nil {
		// The run lock on every etcd host, before the first change: a run
		// from another bastion refuses here.
		s.Lock.SetRunID(env.RunID)
		var hosts []*inventory.Host
		for _, m := range r.Members {
			hosts = append(hosts, m.Host)
		}
		if err := s.Lock.LockHosts(ctx, env, hosts); err != nil {
			return nil, &unchanged{err}
		}
		defer s.Lock.ReleaseHosts(ctx)
		if err := s.Lock.Record(rec); err != nil {
			return nil, &unchanged{fmt.Errorf("run record %s: %w", rec.Dir, err)}
		}
	}
	// One bar for the push to every member, made when the push starts.
	var once sync.Once
	var bar atomic.Pointer[transport.TransferProgress]
	env.Progress = func(host string) func(int64) {
		once.Do(func() {
			bar.Store(transport.NewTransferProgress(
				fmt.Sprintf("push %s", filepath.Base(r.Snapshot.Path)), r.Snapshot.Size, len(r.Members)))
		})
		return bar.Load().Host(host)
	}
	// The push runs beside other steps: their lines clear the bar first.
	out := env.Out
	env.Out = writerFunc(func(b []byte) (int, error) {
		if p := bar.Load(); p != nil {
			p.Clear()
		}
		return out.Write(b)
	})
	defer func() { env.Out = out }()
	defer func() {
		if p := bar.Load(); p != nil {
			p.Finish()
		}
	}()
	fmt.Fprintf(env.Out, "Run %s: record in %s\n", env.RunID, rec.Dir)
	recap, err := orchestrator.Run(ctx, env, plan.Plan)
	if recap != nil {
		recap.WriteRecap(env.Out)
	}
	if recErr := rec.Err(); recErr != nil {
		fmt.Fprintf(env.Out, "\nWARNING: the run record is incomplete (%v); --from-step may not find this run: pass --initial-cluster-token %s\n", recErr, r.Token)
	}
	if err != nil {
		return recap, s.explain(err, rec.Dir, recap)
	}
	fmt.Fprintf(env.Out, "\netcd restored from %s (revision %d) with token %s.\n", r.Snapshot.Path, r.Snapshot.Revision, r.Token)
	fmt.Fprint(env.Out, SetAsideText(r))
	fmt.Fprintf(env.Out, "Run record: %s\n", rec.Dir)
	return recap, nil
}

// writerFunc is an io.Writer made of a func.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// SetAsideText lists what the swap moves aside on each host and how to put it back.
func (s *Session) SetAsideText() string { return SetAsideText(s.Restore) }

// explain turns a run failure into what happened and what to do next: where
// the cluster stands (what is stopped where, whether the data was swapped),
// how to go on and how to go back. The returned error wraps err, so callers
// can still errors.As its StepError.
func (s *Session) explain(err error, recordDir string, recap *orchestrator.Recap) error {
	var b strings.Builder
	who := "-i " + transport.Quote(s.req.Target.Inventory)
	if s.req.Target.Cluster != "" {
		who = transport.Quote(s.req.Target.Cluster)
	}
	next := func(step string, swapped bool) {
		standing := s.standing(recap)
		if again := s.memberNotCopied(who); again != "" {
			// The copy's own stop is no step's unit state: it says it itself.
			if standing != noneStopped {
				b.WriteString(standing)
			}
			b.WriteString(again)
		} else {
			b.WriteString(standing)
			fmt.Fprintf(&b, "\nTo go on after fixing the cause (the token %s is reused from the run record):\n  ezrestore restore %s --snapshot %s --from-step %s",
				s.Restore.Token, who, transport.Quote(s.Restore.Snapshot.Path), transport.Quote(step))
		}
		if swapped {
			fmt.Fprintf(&b, "\nTo go back to the data as it was before this run:\n  ezrestore rollback %s --run %s", who, s.Env.RunID)
		} else {
			b.WriteString("\nThe old etcd data is still in place (the swap had not run): to go back, start what is stopped (above) with systemctl start.")
		}
	}
	swapAt := orchestrator.StepOf[*steps.EtcdSwap](s.Env)
	var se *orchestrator.StepError
	var ie *orchestrator.InterruptedError
	switch {
	case errors.As(err, &se):
		if s.readOnlyRun(recap) {
			b.WriteString("\nNothing was changed on any host.")
			break
		}
		// What ran, not the failed step's place: a background step fails
		// where the run waits for it, after later steps ran.
		swapped := swapAt >= 0 && s.ran(recap, s.Env.Playbook.Steps[swapAt].Name)
		if swapped {
			b.WriteString("\n\n" + SetAsideText(s.Restore))
		}
		if !s.cleanedUp(recap) {
			b.WriteString(steps.StagedText(s.Env, s.Restore, s.reached(recap)))
		}
		resume := s.resumeFrom(se.Step, recap)
		// A background step that ran beside the swap cannot simply run again
		// with what follows it (the swap would run twice).
		if sp := s.Plan.Steps[se.Index]; s.besideSwap(sp) {
			// The steps after it ran (a swap may be among them): going on
			// means finishing its part by hand, then the step that waited.
			var failed []string
			for _, f := range se.Failures {
				failed = append(failed, f.Host)
			}
			fmt.Fprintf(&b, "\nStep %q ran in the background and failed; the steps up to %q ran beside it. Do by hand what it could not on %s (its commands are in %s), then go on from %q.",
				se.Step, sp.FinishBefore, strings.Join(failed, ", "), filepath.Join(recordDir, "plan.txt"), sp.FinishBefore)
			resume = sp.FinishBefore
		}
		next(resume, swapped)
	case errors.As(err, &ie):
		swapped := swapAt >= 0 && s.ran(recap, s.Env.Playbook.Steps[swapAt].Name)
		if swapped {
			b.WriteString("\n\n" + SetAsideText(s.Restore))
		}
		resume := s.resumeFrom(ie.NextStep, recap)
		if i, err := s.Env.Playbook.StepIndex(resume); err == nil {
			b.WriteString(steps.StagedText(s.Env, s.Restore, i-1))
		}
		next(resume, swapped)
	}
	fmt.Fprintf(&b, "\nRun record: %s", recordDir)
	return &RunError{Err: err, Advice: b.String()}
}

// besideSwap is true for a background step that the run leaves running
// across the swap (it starts before and is waited for after it), or any
// background step when the playbook has no swap step to judge by.
func (s *Session) besideSwap(sp *orchestrator.StepPlan) bool {
	if !sp.Background || sp.FinishBefore == "" {
		return false
	}
	swapAt := orchestrator.StepOf[*steps.EtcdSwap](s.Env)
	if swapAt < 0 {
		return true
	}
	until, err := s.Env.Playbook.StepIndex(sp.FinishBefore)
	return sp.Index < swapAt && (err != nil || until > swapAt)
}

// resumeFrom is where a run that stopped at step goes on: that step, or an
// earlier background step that failed (or was cut short) beside the steps
// after it, when it is safe to run again from there (not beside the swap).
// Pushing the snapshot runs beside the stops: a push that failed is resumed
// from the push, not from the step that waited for it.
func (s *Session) resumeFrom(step string, recap *orchestrator.Recap) string {
	at, err := s.Env.Playbook.StepIndex(step)
	if err != nil || recap == nil {
		return step
	}
	for _, sp := range s.Plan.Steps {
		if sp.Index < at && sp.Background && !s.besideSwap(sp) && stepStatus(recap, sp.Name) == orchestrator.StepFailed {
			return sp.Name
		}
	}
	return step
}

// stepStatus is the step's status in the recap ("" when it has none).
func stepStatus(recap *orchestrator.Recap, step string) string {
	if recap == nil {
		return ""
	}
	for _, st := range recap.Steps {
		if st.Name == step {
			return st.Status
		}
	}
	return ""
}

// ran is true when the recap shows the step started in this run.
func (s *Session) ran(recap *orchestrator.Recap, step string) bool {
	st := stepStatus(recap, step)
	return st == orchestrator.StepOK || st == orchestrator.StepFailed
}

// before is true when the step was left out as before --from-step.
func (s *Session) before(recap *orchestrator.Recap, step string) bool {
	return stepStatus(recap, step) == orchestrator.StepBefore
}

// standing says which units this run left stopped on which hosts, from the
// systemd steps that ran (a failed step counts: some of its hosts changed).
func (s *Session) standing(recap *orchestrator.Recap) string {
	stopped := map[string][]string{} // host -> units, in playbook order
	for _, sp := range s.Plan.Steps {
		// Steps before --from-step ran in the run this one resumes.
		if !s.ran(recap, sp.Name) && !s.before(recap, sp.Name) {
			continue
		}
		st := &s.Env.Playbook.Steps[sp.Index]
		us, ok := s.Env.Actions[st.Action].(steps.UnitSetter)
		if !ok {
			continue
		}
		state, _ := us.Leaves(st)
		units, _ := us.Units(st)
		skipped := map[string]bool{}
		for _, t := range sp.Tasks {
			if t.Skip != "" {
				skipped[t.Host] = true
			}
		}
		for _, h := range orchestrator.HostsOf(s.Env.Inventory, st.Hosts) {
			if skipped[h.Name] || s.Env.Unreachable[h.Name] != nil {
				continue
			}
			for _, u := range units {
				has := slices.Contains(stopped[h.Name], u)
				switch {
				case state == "stopped" && !has:
					stopped[h.Name] = append(stopped[h.Name], u)
				case state == "started" && has:
					stopped[h.Name] = slices.DeleteFunc(stopped[h.Name], func(x string) bool { return x == u })
				}
			}
		}
	}
	// One line per set of units, hosts in inventory order.
	var order []string
	byUnits := map[string][]string{}
	for _, h := range s.Env.Inventory.Hosts {
		if us := stopped[h.Name]; len(us) > 0 {
			k := strings.Join(us, ", ")
			if _, seen := byUnits[k]; !seen {
				order = append(order, k)
			}
			byUnits[k] = append(byUnits[k], h.Name)
		}
	}
	if len(order) == 0 {
		return noneStopped
	}
	var b strings.Builder
	b.WriteString("\nWhere the cluster stands: this run left stopped")
	for _, k := range order {
		fmt.Fprintf(&b, "\n  %s on %s", k, strings.Join(byUnits[k], ", "))
	}
	return b.String()
}

const noneStopped = "\nNo unit is left stopped by this run."

// readOnlyRun is true when every step this run started is read-only (and it
// resumes no earlier run).
func (s *Session) readOnlyRun(recap *orchestrator.Recap) bool {
	if s.Plan.FromStep != "" {
		return false
	}
	for _, sp := range s.Plan.Steps {
		if !sp.ReadOnly && s.ran(recap, sp.Name) {
			return false
		}
	}
	return true
}

// cleanedUp is true when this run's clean-up step removed the staged copies.
func (s *Session) cleanedUp(recap *orchestrator.Recap) bool {
	i := orchestrator.StepOf[*steps.EtcdCleanup](s.Env)
	return i >= 0 && stepStatus(recap, s.Env.Playbook.Steps[i].Name) == orchestrator.StepOK
}

// reached is the index of the last step this run started.
func (s *Session) reached(recap *orchestrator.Recap) int {
	last := -1
	for _, sp := range s.Plan.Steps {
		if s.ran(recap, sp.Name) {
			last = sp.Index
		}
	}
	return last
}
