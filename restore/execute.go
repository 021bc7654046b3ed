package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/orchestrator/transport"
	"github.com/ezrestore/ezrestore/steps"
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
	for _, f := range []struct {
		name string
		data []byte
	}{{"plan.json", pj}, {"plan.txt", []byte(pt.String())}, {"token", []byte(r.Token + "\n")}, {"set-aside.txt", []byte(SetAsideText(r))}} {
		if err := rec.WriteFile(f.name, f.data); err != nil {
			return nil, &unchanged{fmt.Errorf("run record %s: %w", rec.Dir, err)}
		}
	}
	var progress *transport.TransferProgress
	var once sync.Once
	env.Progress = func(host string) func(int64) {
		once.Do(func() {
			progress = transport.NewTransferProgress(
				fmt.Sprintf("push %s", filepath.Base(r.Snapshot.Path)), r.Snapshot.Size, len(r.Members))
		})
		return progress.Host(host)
	}
	defer func() {
		if progress != nil {
			progress.Finish()
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
		return recap, s.explain(err, rec.Dir)
	}
	fmt.Fprintf(env.Out, "\netcd restored from %s (revision %d) with token %s.\n", r.Snapshot.Path, r.Snapshot.Revision, r.Token)
	fmt.Fprint(env.Out, SetAsideText(r))
	fmt.Fprintf(env.Out, "Run record: %s\n", rec.Dir)
	return recap, nil
}

// SetAsideText lists what the swap moves aside on each host and how to put it back.
func (s *Session) SetAsideText() string { return SetAsideText(s.Restore) }

// explain turns a run failure into what happened and what to do next; the
// returned error wraps err, so callers can still errors.As its StepError.
func (s *Session) explain(err error, recordDir string) error {
	var b strings.Builder
	resume := func(step string) {
		who := "-i " + transport.Quote(s.req.Target.Inventory)
		if s.req.Target.Cluster != "" {
			who = transport.Quote(s.req.Target.Cluster)
		}
		fmt.Fprintf(&b, "\nAfter fixing the cause, resume with:\n  ezrestore restore %s --snapshot %s --from-step %s\n(the token %s is reused from the run record)",
			who, transport.Quote(s.Restore.Snapshot.Path), transport.Quote(step), s.Restore.Token)
	}
	var se *orchestrator.StepError
	var ie *orchestrator.InterruptedError
	switch {
	case errors.As(err, &se):
		if s.readOnlyThrough(se.Index) {
			b.WriteString("\nNothing was changed on any host.")
			break
		}
		if swap := orchestrator.StepOf[*steps.EtcdSwap](s.Env); swap >= 0 && se.Index >= swap {
			b.WriteString("\n" + SetAsideText(s.Restore))
		} else {
			b.WriteString("\nThe old etcd data is still in place: the swap had not run.")
		}
		b.WriteString(steps.StagedText(s.Env, s.Restore, se.Index))
		resume(se.Step)
	case errors.As(err, &ie):
		if i, err := s.Env.Playbook.StepIndex(ie.NextStep); err == nil {
			b.WriteString(steps.StagedText(s.Env, s.Restore, i-1))
		}
		resume(ie.NextStep)
	}
	fmt.Fprintf(&b, "\nRun record: %s", recordDir)
	return &RunError{Err: err, Advice: b.String()}
}

// readOnlyThrough is true when this run ran only read-only steps up to index.
func (s *Session) readOnlyThrough(index int) bool {
	if s.Plan.FromStep != "" {
		return false
	}
	for _, sp := range s.Plan.Steps {
		if sp.Index <= index && !sp.ReadOnly {
			return false
		}
	}
	return true
}
