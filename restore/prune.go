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
	"text/tabwriter"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/playbooks"
	"github.com/ezrestore/ezrestore/steps"
)

// RunRecord is what a run record in <cluster dir>/restores/ says about a run.
type RunRecord struct {
	ID    string    `json:"id"`
	Token string    `json:"token"`
	Start time.Time `json:"start"`
	// Changed is true when the run changed a host.
	Changed bool `json:"changed"`
	// Healthy is true when the run's health step ended ok.
	Healthy bool `json:"healthy"`
}

// defaultHealthStep names the health step of records whose plan is unreadable.
const defaultHealthStep = "wait for etcd health"

// ReadRuns reads every run record of a cluster, oldest first. A record
// whose events cannot be read counts as a run that did not end healthy.
func ReadRuns(recordDir string) ([]RunRecord, error) {
	entries, err := os.ReadDir(recordDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the run records: %w", err)
	}
	var runs []RunRecord
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(recordDir, e.Name())
		tok, err := os.ReadFile(filepath.Join(dir, "token"))
		if err != nil {
			continue // no token: nothing on the hosts is named after it
		}
		r := RunRecord{ID: e.Name(), Token: trimLine(tok)}
		if fi, err := e.Info(); err == nil {
			r.Start = fi.ModTime().UTC()
		}
		evs, _ := orchestrator.ReadEvents(dir)
		if len(evs) > 0 {
			r.Start = evs[0].Time
		}
		r.Changed = orchestrator.Changed(evs)
		health := healthStepName(dir)
		for _, ev := range evs {
			if ev.Step == health && ev.Host == "" && ev.Status == "end:ok" {
				r.Healthy = true
			}
		}
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
	return runs, nil
}

// healthStepName is the name the run's plan gave its etcd-health step.
func healthStepName(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "plan.json"))
	if err != nil {
		return defaultHealthStep
	}
	var p struct {
		Steps []struct{ Name, Action string } `json:"steps"`
	}
	if json.Unmarshal(b, &p) != nil {
		return defaultHealthStep
	}
	for _, s := range p.Steps {
		if s.Action == "etcd-health" {
			return s.Name
		}
	}
	return defaultHealthStep
}

// RunGroup is everything one token names: the runs recorded with it and what
// they left on the etcd hosts.
type RunGroup struct {
	Token string   `json:"token"`
	Runs  []string `json:"runs,omitempty"`
	// Time is when the newest run with this token started, or without a
	// record the newest mtime of what it left.
	Time time.Time `json:"time"`
	// Healthy: the newest run with this token that changed hosts ended healthy.
	// Unknown (no record) counts as not healthy.
	Healthy  bool           `json:"healthy"`
	Recorded bool           `json:"recorded"`
	Bytes    int64          `json:"bytes"`
	Entries  []HostLeftover `json:"entries"`
}

// HostLeftover is a leftover with the host it is on.
type HostLeftover struct {
	Host string `json:"host"`
	etcdhost.Leftover
}

// State names the group for people: its runs and how they ended.
func (g *RunGroup) State() string {
	switch {
	case !g.Recorded:
		return "no run record"
	case g.Healthy:
		return "ended healthy"
	default:
		return "did not end healthy"
	}
}

// SetAside is true when the run set old data aside (its swap ran) on some host.
func (g *RunGroup) SetAside() bool {
	for _, e := range g.Entries {
		if e.Kind == etcdhost.KindAside || e.Kind == etcdhost.KindAsideWal {
			return true
		}
	}
	return false
}

// RunLabel is the group's runs, or its token when no run is recorded.
func (g *RunGroup) RunLabel() string {
	if len(g.Runs) == 0 {
		return "token " + g.Token
	}
	return "run " + strings.Join(g.Runs, ", ")
}

// GroupLeftovers groups the hosts' leftovers by run token, newest first.
// Leftovers whose names carry no token are not grouped (never pruned).
func GroupLeftovers(spaces []*etcdhost.HostSpace, runs []RunRecord) []*RunGroup {
	byToken := map[string]*RunGroup{}
	var out []*RunGroup
	get := func(tok string) *RunGroup {
		g := byToken[tok]
		if g == nil {
			g = &RunGroup{Token: tok}
			byToken[tok] = g
			out = append(out, g)
		}
		return g
	}
	for _, hs := range spaces {
		if hs == nil {
			continue
		}
		for _, l := range hs.Leftovers {
			if l.Token == "" {
				continue
			}
			g := get(l.Token)
			g.Entries = append(g.Entries, HostLeftover{Host: hs.Host, Leftover: l})
			g.Bytes += l.Bytes
			if l.ModTime.After(g.Time) {
				g.Time = l.ModTime
			}
		}
	}
	for _, g := range out {
		var last *RunRecord
		for i := range runs {
			r := &runs[i]
			if r.Token != g.Token {
				continue
			}
			g.Runs = append(g.Runs, r.ID)
			if !g.Recorded || r.Start.After(g.Time) {
				g.Time = r.Start
			}
			g.Recorded = true
			if r.Changed && (last == nil || r.Start.After(last.Start)) {
				last = r
			}
		}
		g.Healthy = last != nil && last.Healthy
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out
}

// PruneRequest says what to prune.
type PruneRequest struct {
	Target cluster.Selector
	// Keep is how many of the newest runs keep their data (at least 1).
	Keep int
	// OlderThan, when set, prunes only runs older than this.
	OlderThan time.Duration
	// Run names one run (run id or token) to prune, even the newest or one
	// that did not end healthy. Keep and OlderThan do not apply then.
	Run    string
	DryRun bool
	Yes    bool
	// Confirm asks on a terminal; nil when there is none.
	Confirm func(summary string) (bool, error)
	Forks   int
	Out     io.Writer
	// BreakLock takes over a stale run lock of the cluster (--break-lock).
	BreakLock bool
	// Now is the time OlderThan counts from (zero: the clock).
	Now time.Time
}

// PruneDecision is one run's fate.
type PruneDecision struct {
	*RunGroup
	Remove bool   `json:"remove"`
	Why    string `json:"why"`
}

// PruneRemoved is one dir that prune removed or failed to.
type PruneRemoved = steps.PruneRemoved

// PruneReport is what prune found, decided and did; it is also the record
// kept in <cluster dir>/prunes/<time>.json.
type PruneReport struct {
	Cluster   string                     `json:"cluster"`
	Time      time.Time                  `json:"time"`
	Request   map[string]string          `json:"request"`
	Decisions []PruneDecision            `json:"runs"`
	Removed   []PruneRemoved             `json:"removed,omitempty"`
	Freed     int64                      `json:"freed_bytes"`
	Skipped   []orchestrator.SkippedHost `json:"unreachable_hosts,omitempty"`
	Ignored   []HostLeftover             `json:"ignored,omitempty"`
	Record    string                     `json:"-"`
}

// DecidePrune says, per run, whether its leftovers go. The newest run and runs
// that did not end healthy are kept unless named with Run.
func DecidePrune(groups []*RunGroup, req PruneRequest) ([]PruneDecision, error) {
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	var out []PruneDecision
	if req.Run != "" {
		found := false
		for _, g := range groups {
			d := PruneDecision{RunGroup: g, Why: "not the run named with --run"}
			if g.Token == req.Run || containsString(g.Runs, req.Run) {
				d.Remove, d.Why, found = true, "named with --run", true
			}
			out = append(out, d)
		}
		if !found {
			var names []string
			for _, g := range groups {
				names = append(names, fmt.Sprintf("%s (token %s)", g.RunLabel(), g.Token))
			}
			if len(names) == 0 {
				names = []string{"none"}
			}
			return nil, fmt.Errorf("--run %s: no run of that id or token left anything on the etcd hosts; runs with leftovers: %s", req.Run, strings.Join(names, "; "))
		}
		return out, nil
	}
	// --keep counts runs that set data aside: the newest of them is the way
	// back from the data live now, even when a newer run failed before its swap.
	keep := max(req.Keep, 1)
	asides := 0
	for i, g := range groups {
		d := PruneDecision{RunGroup: g}
		rank := -1
		if g.SetAside() {
			rank = asides
			asides++
		}
		switch {
		case i == 0:
			d.Why = "the newest run"
		case rank >= 0 && rank < keep:
			d.Why = "the newest run that set data aside"
			if keep > 1 {
				d.Why = fmt.Sprintf("one of the %d newest runs that set data aside (--keep %d)", keep, keep)
			}
		case !g.Recorded:
			d.Why = "no run record says how it ended: name it with --run to remove it"
		case !g.Healthy:
			d.Why = "its run did not end healthy: name it with --run to remove it"
		case req.OlderThan > 0 && now.Sub(g.Time) < req.OlderThan:
			d.Why = fmt.Sprintf("newer than --older-than %v", req.OlderThan)
		default:
			d.Remove, d.Why = true, "ended healthy, older than the kept runs"
		}
		out = append(out, d)
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Prune removes set-aside data and staged copies of earlier runs on every
// etcd host, as DecidePrune says, after a typed yes (or --yes), and records
// what it removed in <cluster dir>/prunes/<time>.json.
func Prune(ctx context.Context, req PruneRequest) (*PruneReport, error) {
	if req.Out == nil {
		req.Out = io.Discard
	}
	if req.Forks <= 0 {
		req.Forks = orchestrator.DefaultForks
	}
	if req.Keep < 1 {
		return nil, fmt.Errorf("--keep %d: the newest run's data is always kept, so --keep is at least 1 (name a run with --run to remove it)", req.Keep)
	}
	cl, err := cluster.OpenEtcd(req.Target)
	if err != nil {
		return nil, err
	}
	members := cl.Members
	pool := cl.Connect(ctx, cl.Inventory.EtcdHosts(), req.Forks)
	defer pool.Close()
	env := &orchestrator.Env{Cluster: cl.Name, Inventory: cl.Inventory, Conns: pool, Unreachable: pool.Failed(), Forks: req.Forks, Out: req.Out}
	rep := &PruneReport{Cluster: cl.Name, Time: time.Now().UTC(), Request: map[string]string{
		"keep": fmt.Sprint(req.Keep), "older_than": req.OlderThan.String(), "run": req.Run, "dry_run": fmt.Sprint(req.DryRun)}}
	facts, spaces, errs := gatherSpace(ctx, env, members, false)
	for i, m := range members {
		if errs[i] != nil {
			rep.Skipped = append(rep.Skipped, orchestrator.SkippedHost{Host: m.Host.Name, Reason: errs[i].Error()})
		}
	}
	runs, err := ReadRuns(cl.RecordDir)
	if err != nil {
		return nil, err
	}
	groups := GroupLeftovers(spaces, runs)
	for _, hs := range spaces {
		if hs == nil {
			continue
		}
		for _, l := range hs.Leftovers {
			if l.Token == "" {
				rep.Ignored = append(rep.Ignored, HostLeftover{Host: hs.Host, Leftover: l})
			}
		}
	}
	if rep.Decisions, err = DecidePrune(groups, req); err != nil {
		return nil, err
	}
	rep.WritePlan(req.Out)
	var todo []PruneDecision
	for _, d := range rep.Decisions {
		if d.Remove {
			todo = append(todo, d)
		}
	}
	if len(todo) == 0 {
		fmt.Fprintln(req.Out, "\nNothing to remove.")
		return rep, nil
	}
	if req.DryRun {
		fmt.Fprintln(req.Out, "\n--dry-run: nothing was removed.")
		return rep, nil
	}
	return rep, rep.run(ctx, req, cl, env, facts, todo)
}

// run removes what was chosen on the engine, as restore and rollback run:
// the prune playbook planned, confirmed (a typed yes or --yes), run under
// the cluster's run lock and recorded in <cluster dir>/prunes/<id>/, beside
// the report <id>.json.
func (rep *PruneReport) run(ctx context.Context, req PruneRequest, cl *cluster.Cluster, env *orchestrator.Env, facts []*etcdhost.EtcdFacts, todo []PruneDecision) error {
	p := &steps.Prune{Remove: map[string]steps.PruneHost{}, Yes: req.Yes, Confirm: req.Confirm}
	var total int64
	for _, d := range todo {
		total += d.Bytes
		for _, e := range d.Entries {
			ph := p.Remove[e.Host]
			ph.Leftovers = append(ph.Leftovers, e.Leftover)
			p.Remove[e.Host] = ph
		}
	}
	var hosts []string
	for i, m := range cl.Members {
		hosts = append(hosts, m.Host.Name)
		if ph, ok := p.Remove[m.Host.Name]; ok {
			ph.Etcd = facts[i]
			p.Remove[m.Host.Name] = ph
		}
	}
	p.Summary = fmt.Sprintf("This deletes %s of set-aside etcd data and staged copies of %d runs on the etcd hosts, for good.", bytesize.Human(total), len(todo))
	actions := steps.PruneActions(p)
	pb, err := orchestrator.ParsePlaybook(playbooks.Prune, playbooks.PruneName, actions)
	if err != nil {
		return err
	}
	env.Playbook, env.Actions, env.RunID = pb, actions, rep.Time.Format(pruneIDLayout)
	plan, err := orchestrator.BuildPlan(ctx, env)
	if err != nil {
		return fmt.Errorf("%w; nothing was removed", err)
	}
	// The run lock, as a restore takes it: nothing is removed under a run
	// that may be using it.
	lock, err := LockCluster(req.Target, LockOptions{Command: "prune", Break: req.BreakLock, Out: req.Out})
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	if err := lock.LockHosts(ctx, env, cl.Inventory.EtcdHosts()); err != nil {
		return err
	}
	dir := filepath.Join(cl.Dir, "prunes")
	rec, err := orchestrator.NewRecord(dir, env.RunID)
	if err != nil {
		return err
	}
	defer rec.Close()
	env.Record = rec
	pj, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return err
	}
	var pt strings.Builder
	rep.WritePlan(&pt)
	plan.WriteText(&pt)
	for _, f := range []struct {
		name string
		data []byte
	}{{"plan.json", pj}, {"plan.txt", []byte(pt.String())}} {
		if err := rec.WriteFile(f.name, f.data); err != nil {
			return fmt.Errorf("run record %s: %w; nothing was removed", rec.Dir, err)
		}
	}
	if err := lock.Record(rec); err != nil {
		return fmt.Errorf("run record %s: %w; nothing was removed", rec.Dir, err)
	}
	fmt.Fprintf(req.Out, "\nPrune %s: record in %s\n", env.RunID, rec.Dir)
	_, runErr := orchestrator.Run(ctx, env, plan)
	removed, ran := p.Removed(hosts)
	if !ran {
		return runErr
	}
	rep.Removed = removed
	for _, r := range removed {
		if r.Result == "removed" {
			rep.Freed += r.Bytes
		}
	}
	recErr := rep.save(dir)
	rep.WriteResult(req.Out)
	return errors.Join(runErr, recErr)
}

// pruneIDLayout names a prune's report and record (its start, to the millisecond).
const pruneIDLayout = "20060102T150405.000Z"

// gatherSpace reads each member's unit and measures its space, all hosts at
// once, read-only. A host that cannot be read has a nil space and its error.
func gatherSpace(ctx context.Context, env *orchestrator.Env, members []inventory.EtcdMember, alarms bool) ([]*etcdhost.EtcdFacts, []*etcdhost.HostSpace, []error) {
	facts := make([]*etcdhost.EtcdFacts, len(members))
	spaces := make([]*etcdhost.HostSpace, len(members))
	errs := fanout.Each(ctx, len(members), env.Forks, func(ctx context.Context, i int) error {
		m := members[i]
		conn, err := env.Conn(m.Host.Name)
		if err != nil {
			return err
		}
		f, err := etcdhost.GatherEtcd(ctx, conn, m.Host)
		if err != nil {
			return fmt.Errorf("reading the etcd unit: %w", err)
		}
		facts[i] = f
		hs, err := etcdhost.ProbeSpace(ctx, conn, f, alarms)
		if err != nil {
			return err
		}
		spaces[i] = hs
		return nil
	})
	return facts, spaces, errs
}

// save writes the report to dir/<time>.json (0600, dir 0700).
func (rep *PruneReport) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("prune record: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("prune record: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("prune record: %w", err)
	}
	p := filepath.Join(dir, rep.Time.Format(pruneIDLayout)+".json")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("prune record: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("prune record %s: %w", p, err)
	}
	rep.Record = p
	return nil
}

// WritePlan prints, per run, what goes and what stays, and why.
func (rep *PruneReport) WritePlan(w io.Writer) {
	fmt.Fprintf(w, "Set-aside data and staged copies on the etcd hosts of %s:\n", rep.Cluster)
	for _, sk := range rep.Skipped {
		fmt.Fprintf(w, "  %s: not measured: %s\n", sk.Host, sk.Reason)
	}
	if len(rep.Decisions) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, d := range rep.Decisions {
		verb := "KEEP  "
		if d.Remove {
			verb = "REMOVE"
		}
		fmt.Fprintf(w, "\n%s %s (token %s), %s, %s, %s: %s\n", verb, d.RunLabel(), d.Token, d.Time.Local().Format("2006-01-02 15:04:05"),
			d.State(), bytesize.Human(d.Bytes), d.Why)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, e := range d.Entries {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Host, e.Path, e.Kind, bytesize.Human(e.Bytes))
		}
		tw.Flush()
	}
	for _, l := range rep.Ignored {
		fmt.Fprintf(w, "\nLEFT ALONE %s:%s (%s): a name ezrestore does not make\n", l.Host, l.Path, bytesize.Human(l.Bytes))
	}
}

// WriteResult prints what was removed, what failed, and where the record is.
func (rep *PruneReport) WriteResult(w io.Writer) {
	fmt.Fprintln(w)
	for _, r := range rep.Removed {
		fmt.Fprintf(w, "%s: %s %s (%s)\n", r.Host, r.Result, r.Path, bytesize.Human(r.Bytes))
	}
	fmt.Fprintf(w, "Freed %s.\n", bytesize.Human(rep.Freed))
	if rep.Record != "" {
		fmt.Fprintf(w, "Record: %s\n", rep.Record)
	}
}
