package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/playbooks"
	"github.com/ezrestore/ezrestore/steps"
	"github.com/ezrestore/ezrestore/transport"
)

// RollbackRequest is what the operator asked to put back.
type RollbackRequest struct {
	Target cluster.Selector
	// RunID is the restore run to undo; "" is the newest that set data aside.
	RunID         string
	Forks         int
	HealthTimeout time.Duration
	Yes           bool
	Confirm       func(summary string) (bool, error)
	Out           io.Writer
	// Lock, when set, is taken on the etcd hosts for the run (its bastion
	// part is the caller's).
	Lock *Lock
}

// RollbackSession is a prepared rollback: connected, checked and planned.
type RollbackSession struct {
	Env      *orchestrator.Env
	Rollback *steps.Rollback
	Plan     *orchestrator.Plan
	cluster  *cluster.Cluster
	pool     *transport.Pool
	req      RollbackRequest
}

// SetAsideFile is the run record's machine-readable list of what was set aside.
const SetAsideFile = "set-aside.json"

// PrepareRollback finds the run to undo, connects, checks every etcd host
// (read-only) and plans. Any error it returns means nothing was changed.
func PrepareRollback(ctx context.Context, req RollbackRequest) (*RollbackSession, error) {
	s, err := prepareRollback(ctx, req)
	if err != nil {
		if s != nil {
			s.Close()
		}
		return nil, &unchanged{err}
	}
	return s, nil
}

func prepareRollback(ctx context.Context, req RollbackRequest) (*RollbackSession, error) {
	if req.Out == nil {
		req.Out = io.Discard
	}
	if req.Forks <= 0 {
		req.Forks = orchestrator.DefaultForks
	}
	cl, err := cluster.OpenEtcd(req.Target)
	if err != nil {
		return nil, err
	}
	members := cl.Members
	rec, err := FindSetAside(cl.RecordDir, req.RunID)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(req.Out, "Putting back what run %s set aside (token %s)\n", rec.RunID, rec.Token)
	rb := &steps.Rollback{Record: *rec, Members: members, HealthTimeout: req.HealthTimeout, Yes: req.Yes, Confirm: req.Confirm}
	actions := steps.RollbackActions(rb)
	pb, err := orchestrator.ParsePlaybook(playbooks.Rollback, playbooks.RollbackName, actions)
	if err != nil {
		return nil, err
	}
	rollbacks := filepath.Join(cl.Dir, "rollbacks")
	env := &orchestrator.Env{Cluster: cl.Name, Inventory: cl.Inventory, Playbook: pb, Actions: actions,
		RunID: newRunID(rollbacks), Forks: req.Forks, Out: req.Out}
	s := &RollbackSession{Env: env, Rollback: rb, cluster: cl, req: req}
	targets := orchestrator.HostsOf(cl.Inventory, playbookGroups(pb))
	fmt.Fprintf(req.Out, "Connecting to %d hosts...\n", len(targets))
	s.pool = cl.Connect(ctx, targets, req.Forks)
	env.Conns, env.Unreachable = s.pool, s.pool.Failed()
	fmt.Fprintf(req.Out, "Checking hosts and planning (read-only)...\n")
	if s.Plan, err = orchestrator.BuildPlan(ctx, env); err != nil {
		return s, err
	}
	return s, nil
}

// FindSetAside reads the set-aside record of run runID, or of the newest run
// whose events show its swap step changed a host (it set data aside).
func FindSetAside(recordDir, runID string) (*steps.SetAsideRecord, error) {
	read := func(run string) (*steps.SetAsideRecord, error) {
		p := filepath.Join(recordDir, run, SetAsideFile)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var rec steps.SetAsideRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if len(rec.Hosts) == 0 || rec.Token == "" {
			return nil, fmt.Errorf("%s names no host and token", p)
		}
		return &rec, nil
	}
	if runID != "" {
		rec, err := read(runID)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("run %s has no %s in %s (no such run, or one recorded before rollback existed: its set-aside.txt gives the put-back commands to run by hand)", runID, SetAsideFile, recordDir)
		}
		return rec, err
	}
	entries, err := os.ReadDir(recordDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading the run records: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() > entries[j].Name() })
	for _, e := range entries {
		rec, err := read(e.Name())
		if err != nil {
			continue
		}
		evs, _ := orchestrator.ReadEvents(filepath.Join(recordDir, e.Name()))
		for _, ev := range evs {
			if ev.Step == rec.SwapStep && ev.Status == "changed" {
				return rec, nil
			}
		}
	}
	return nil, fmt.Errorf("no run recorded in %s set data aside: nothing to put back (name a run with --run)", recordDir)
}

// WriteText prints the rollback's plan.
func (s *RollbackSession) WriteText(w io.Writer) {
	rec := s.Rollback.Record
	fmt.Fprintf(w, "Rollback plan for %s (inventory %s, playbook %s)\n", s.Plan.Cluster, s.Plan.Inventory, s.Plan.Playbook)
	fmt.Fprintf(w, "Puts back what restore run %s set aside (token %s); the restored data is kept as *.restored-%s:\n", rec.RunID, rec.Token, rec.Token)
	for _, h := range rec.Hosts {
		if h.MemberInPlace {
			fmt.Fprintf(w, "  %s: the contents of %s -> %s (a mount point or a symlink: it stays)", h.Host, h.Aside, h.Member)
		} else {
			fmt.Fprintf(w, "  %s: %s -> %s", h.Host, h.Aside, h.Member)
		}
		switch {
		case h.WalInPlace:
			fmt.Fprintf(w, ", the contents of %s -> %s (a mount point or a symlink: it stays)", h.AsideWal, h.Wal)
		case h.Wal != "":
			fmt.Fprintf(w, ", %s -> %s", h.AsideWal, h.Wal)
		}
		fmt.Fprintln(w)
	}
	s.Plan.WriteText(w)
}

// Execute runs the rollback, keeping a record in <cluster dir>/rollbacks/<run id>/
// (apart from the restores' records, so a rollback is never taken for a
// restore to resume or to roll back).
func (s *RollbackSession) Execute(ctx context.Context) (*orchestrator.Recap, error) {
	env := s.Env
	rec, err := orchestrator.NewRecord(filepath.Join(s.cluster.Dir, "rollbacks"), env.RunID)
	if err != nil {
		return nil, &unchanged{err}
	}
	defer rec.Close()
	env.Record = rec
	pj, err := json.MarshalIndent(s.Plan, "", "  ")
	if err != nil {
		return nil, &unchanged{err}
	}
	var pt strings.Builder
	s.WriteText(&pt)
	for _, f := range []struct {
		name string
		data []byte
	}{{"plan.json", pj}, {"plan.txt", []byte(pt.String())}, {"restore-run", []byte(s.Rollback.Record.RunID + "\n")}} {
		if err := rec.WriteFile(f.name, f.data); err != nil {
			return nil, &unchanged{fmt.Errorf("run record %s: %w", rec.Dir, err)}
		}
	}
	if l := s.req.Lock; l != nil {
		l.SetRunID(env.RunID)
		if err := l.LockHosts(ctx, env, orchestrator.HostsOf(env.Inventory, []string{"etcd"})); err != nil {
			return nil, &unchanged{err}
		}
		defer l.ReleaseHosts(ctx)
		if err := l.Record(rec); err != nil {
			return nil, &unchanged{fmt.Errorf("run record %s: %w", rec.Dir, err)}
		}
	}
	fmt.Fprintf(env.Out, "Rollback %s: record in %s\n", env.RunID, rec.Dir)
	recap, err := orchestrator.Run(ctx, env, s.Plan)
	if recap != nil {
		recap.WriteRecap(env.Out)
	}
	if err != nil {
		return recap, s.explain(err, rec.Dir)
	}
	fmt.Fprintf(env.Out, "\netcd is back on the data run %s set aside; the restored data is kept beside it as *.restored-%s.\nRun record: %s\n",
		s.Rollback.Record.RunID, s.Rollback.Record.Token, rec.Dir)
	return recap, nil
}

// explain says where a failed rollback leaves the cluster and what to do next.
func (s *RollbackSession) explain(err error, recordDir string) error {
	var b strings.Builder
	who := "-i " + transport.Quote(s.req.Target.Inventory)
	if s.req.Target.Cluster != "" {
		who = transport.Quote(s.req.Target.Cluster)
	}
	again := fmt.Sprintf("ezrestore rollback %s --run %s", who, s.Rollback.Record.RunID)
	var se *orchestrator.StepError
	var ie *orchestrator.InterruptedError
	changed := true
	if errors.As(err, &se) {
		changed = !s.readOnlyThrough(se.Index)
	}
	switch {
	case !changed:
		b.WriteString("\nNothing was changed on any host.")
	case errors.As(err, &ie), se != nil:
		step := ""
		if ie != nil {
			step = ie.NextStep
		} else {
			step = se.Step
		}
		fmt.Fprintf(&b, "\nStopped at step %q: the Kubernetes units and etcd may be stopped on every host; nothing was deleted (the restored data is kept as *.restored-%s).", step, s.Rollback.Record.Token)
		if pb := orchestrator.StepOf[*steps.PutBack](s.Env); pb >= 0 && se != nil && se.Index > pb {
			fmt.Fprintf(&b, "\nThe old data is back in place on every etcd host. After fixing the cause, start etcd on every etcd host at once (systemctl start --no-block etcd), check with `ezrestore status`, then start kube-apiserver, kube-controller-manager, kube-scheduler on the masters and kubelet, kube-proxy on all nodes.")
		} else {
			fmt.Fprintf(&b, "\nAfter fixing the cause, run the rollback again (it sees what is back already):\n  %s\nthen check with `ezrestore status`.", again)
		}
	}
	fmt.Fprintf(&b, "\nRun record: %s", recordDir)
	return &RunError{Err: err, Advice: b.String()}
}

func (s *RollbackSession) readOnlyThrough(index int) bool {
	for _, sp := range s.Plan.Steps {
		if sp.Index <= index && !sp.ReadOnly {
			return false
		}
	}
	return true
}

// Close ends every connection.
func (s *RollbackSession) Close() {
	if s.pool != nil {
		s.pool.Close()
	}
}
