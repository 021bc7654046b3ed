// Package restore prepares and runs a cluster restore: it loads the
// inventory and playbook, checks the snapshot on the bastion, connects to
// every host, plans (read-only), and executes the plan with a run record.
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
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/playbooks"
	"github.com/ezrestore/ezrestore/snapshot"
	"github.com/ezrestore/ezrestore/steps"
)

// Request is what the operator asked for.
type Request struct {
	// Cluster names <Base>/clusters/<Cluster>/; or Inventory names any inventory file.
	Base, Cluster string
	Inventory     string
	ExtraVars     []string
	// Snapshot is a path, a file name in backup/, "latest" or "before:<time>"; "" is snapshot.db.
	Snapshot string
	Playbook string
	// Token pins --initial-cluster-token; empty: a fresh one, or the last run's with FromStep.
	Token    string
	FromStep string
	Forks    int
	// AcceptNewHostKeys trusts hosts with no recorded key and records them.
	AcceptNewHostKeys bool
	NoBumpRevision    bool
	HealthTimeout     time.Duration
	Yes               bool
	// Confirm asks on a terminal; nil when there is none.
	Confirm func(summary string) (bool, error)
	Out     io.Writer
}

// Session is a prepared restore: connected, checked and planned.
type Session struct {
	Env       *orchestrator.Env
	Plan      *orchestrator.Plan
	pool      *orchestrator.Pool
	recordDir string
	req       Request
	progress  *orchestrator.TransferProgress
	progOnce  sync.Once
}

// ErrNothingChanged marks failures before the first change on any host.
var ErrNothingChanged = errors.New("nothing was changed")

type unchanged struct{ err error }

func (u *unchanged) Error() string {
	return u.err.Error() + "\nNothing was changed on any host."
}
func (u *unchanged) Unwrap() []error { return []error{u.err, ErrNothingChanged} }

// Prepare does everything short of changing a host: it ends with the plan.
// Any error it returns means nothing was changed.
func Prepare(ctx context.Context, req Request) (*Session, error) {
	s, err := prepare(ctx, req)
	if err != nil {
		if s != nil {
			s.Close()
		}
		return nil, &unchanged{err}
	}
	return s, nil
}

func prepare(ctx context.Context, req Request) (*Session, error) {
	if req.Out == nil {
		req.Out = io.Discard
	}
	inv, clusterName, backupDir, recordDir, knownHosts, err := loadInventory(req)
	if err != nil {
		return nil, err
	}
	members, err := inv.EtcdMembers()
	if err != nil {
		return nil, err
	}
	pb, err := loadPlaybook(req.Playbook)
	if err != nil {
		return nil, err
	}
	if req.FromStep != "" {
		if _, err := pb.StepIndex(req.FromStep); err != nil {
			return nil, err
		}
	}
	snap, err := checkSnapshot(backupDir, req.Snapshot)
	if err != nil {
		return nil, err
	}
	token, err := chooseToken(req, recordDir)
	if err != nil {
		return nil, err
	}
	env := &orchestrator.Env{
		Cluster: clusterName, Inventory: inv, Members: members, Playbook: pb,
		Snapshot: *snap, Token: token, RunID: newRunID(recordDir), Out: req.Out,
		Opts: orchestrator.Options{Yes: req.Yes, Confirm: req.Confirm, BumpRevision: !req.NoBumpRevision,
			HealthTimeout: req.HealthTimeout, Forks: req.Forks},
		Unreachable: map[string]error{},
	}
	if env.Opts.HealthTimeout <= 0 {
		env.Opts.HealthTimeout = 120 * time.Second
	}
	if env.Opts.Forks <= 0 {
		env.Opts.Forks = 20
	}
	s := &Session{Env: env, recordDir: recordDir, req: req}

	targets := orchestrator.HostsOf(inv, playbookGroups(pb))
	fmt.Fprintf(req.Out, "Connecting to %d hosts...\n", len(targets))
	pool, connErr := orchestrator.Connect(ctx, targets, orchestrator.DialOptions{
		KnownHostsFiles: knownHosts, AcceptNewHostKeys: req.AcceptNewHostKeys,
	}, env.Opts.Forks)
	s.pool = pool
	env.Conns = pool
	for host, err := range pool.Failed() {
		env.Unreachable[host] = err
	}
	if connErr != nil && len(env.Unreachable) == 0 {
		return s, connErr
	}
	fmt.Fprintf(req.Out, "Checking hosts and planning (read-only)...\n")
	plan, err := orchestrator.BuildPlan(ctx, env)
	if err != nil {
		return s, err
	}
	plan.FromStep = req.FromStep
	s.Plan = plan
	return s, nil
}

// loadInventory reads the cluster dir or the inventory file and says where
// backups and run records live and which known_hosts files to trust.
func loadInventory(req Request) (inv *inventory.Inventory, name, backupDir, recordDir string, knownHosts []string, err error) {
	home, _ := os.UserHomeDir()
	userKnown := filepath.Join(home, ".ssh", "known_hosts")
	switch {
	case req.Inventory != "":
		inv, err = inventory.Load(req.Inventory, req.ExtraVars...)
		if err != nil {
			return
		}
		dir := filepath.Dir(inv.File)
		name, backupDir, recordDir = inv.File, filepath.Join(dir, "backup"), filepath.Join(dir, "restores")
		knownHosts = []string{userKnown}
		if fileExists(filepath.Join(dir, "ssh", "known_hosts")) {
			knownHosts = []string{filepath.Join(dir, "ssh", "known_hosts"), userKnown}
		}
	case req.Cluster != "":
		cd := inventory.NewClusterDir(req.Base, req.Cluster)
		inv, err = inventory.LoadCluster(cd, req.ExtraVars...)
		if err != nil {
			return
		}
		name, backupDir, recordDir = req.Cluster, cd.BackupDir(), cd.RestoresDir()
		knownHosts = []string{userKnown}
		if fileExists(cd.KnownHosts()) {
			knownHosts = []string{cd.KnownHosts(), userKnown}
		}
	default:
		err = fmt.Errorf("name a cluster (a dir under <base>/clusters) or an inventory with -i")
	}
	return
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func loadPlaybook(file string) (*orchestrator.Playbook, error) {
	if file != "" {
		return orchestrator.LoadPlaybookFile(file)
	}
	return orchestrator.ParsePlaybook(playbooks.Restore, playbooks.RestoreName)
}

// playbookGroups are all groups any step targets: the hosts to connect to.
func playbookGroups(pb *orchestrator.Playbook) []string {
	var gs []string
	for _, s := range pb.Steps {
		gs = append(gs, s.Hosts...)
	}
	return gs
}

// checkSnapshot resolves --snapshot and checks the file on the bastion:
// readable, its sha256 trailer (if any) right, its revision readable. The
// catalog reads the file once for both the choice and these checks.
func checkSnapshot(backupDir, spec string) (*orchestrator.SnapshotRef, error) {
	e, how, err := snapshot.ResolveChecked(backupDir, spec)
	if err != nil {
		return nil, err
	}
	switch e.Integrity {
	case snapshot.IntegrityOK, snapshot.IntegrityNoTrailer:
	case snapshot.IntegrityHashMismatch:
		return nil, fmt.Errorf("snapshot %s is damaged: its sha256 trailer does not match its contents (a truncated or altered copy); pick another with `ezrestore snapshots`", e.Path)
	case snapshot.IntegritySidecarMismatch:
		return nil, fmt.Errorf("snapshot %s is damaged: its sha256 differs from the one recorded when the backup was taken (%s); pick another with `ezrestore snapshots`", e.Path, snapshot.SidecarPath(e.Path))
	default:
		return nil, fmt.Errorf("snapshot %s is not a readable etcd snapshot: %s", e.Path, e.Integrity)
	}
	return &orchestrator.SnapshotRef{Path: e.Path, How: how, Size: e.Size, ModTime: e.Time, SHA256: e.SHA256,
		HasTrailer: e.Integrity == snapshot.IntegrityOK, Revision: e.Revision}, nil
}

// chooseToken: the pinned one; with --from-step the last run's (the staging
// paths on the hosts are named after it); else a fresh one.
func chooseToken(req Request, recordDir string) (string, error) {
	if req.Token != "" {
		return req.Token, steps.ValidToken(req.Token)
	}
	if req.FromStep != "" {
		if t, run := lastToken(recordDir); t != "" {
			fmt.Fprintf(req.Out, "Resuming with the token of run %s: %s\n", run, t)
			return t, nil
		}
		return "", fmt.Errorf("--from-step needs the token of the run it resumes, and no earlier run is recorded in %s: pass --initial-cluster-token", recordDir)
	}
	return "etcd-restore-" + time.Now().UTC().Format("20060102T150405Z"), nil
}

// lastToken is the token of the newest recorded run that changed a host
// (a refused or failed-in-preflight run left nothing behind to resume).
func lastToken(recordDir string) (token, run string) {
	entries, _ := os.ReadDir(recordDir)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() > entries[j].Name() })
	for _, e := range entries {
		ev, err := os.ReadFile(filepath.Join(recordDir, e.Name(), "events.jsonl"))
		if err != nil || !strings.Contains(string(ev), `"status":"changed"`) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(recordDir, e.Name(), "token")); err == nil {
			return strings.TrimSpace(string(b)), e.Name()
		}
	}
	return "", ""
}

func newRunID(recordDir string) string {
	id := time.Now().UTC().Format("20060102T150405Z")
	for i := 2; fileExists(filepath.Join(recordDir, id)); i++ {
		id = fmt.Sprintf("%s-%d", time.Now().UTC().Format("20060102T150405Z"), i)
	}
	return id
}

// Close ends every connection.
func (s *Session) Close() {
	if s.pool != nil {
		s.pool.Close()
	}
}

// Execute runs the plan, keeping a record in <cluster dir>/restores/<run id>/.
func (s *Session) Execute(ctx context.Context) (*orchestrator.Recap, error) {
	env, plan := s.Env, s.Plan
	rec, err := orchestrator.NewRecord(s.recordDir, env.RunID)
	if err != nil {
		return nil, &unchanged{err}
	}
	defer rec.Close()
	env.Record = rec
	pj, _ := json.MarshalIndent(plan, "", "  ")
	_ = rec.WriteFile("plan.json", pj)
	var pt strings.Builder
	plan.WriteText(&pt)
	_ = rec.WriteFile("plan.txt", []byte(pt.String()))
	_ = rec.WriteFile("token", []byte(env.Token+"\n"))
	_ = rec.WriteFile("set-aside.txt", []byte(s.SetAsideText()))
	env.SetFact("", orchestrator.FactProgress, func(host string) func(int64) {
		s.progOnce.Do(func() {
			s.progress = orchestrator.NewTransferProgress(
				fmt.Sprintf("push %s", filepath.Base(env.Snapshot.Path)), env.Snapshot.Size, len(env.Members))
		})
		return s.progress.Host(host)
	})
	defer func() {
		if s.progress != nil {
			s.progress.Finish()
		}
	}()
	fmt.Fprintf(env.Out, "Run %s: record in %s\n", env.RunID, rec.Dir)
	recap, err := orchestrator.Run(ctx, env, plan)
	if recap != nil {
		recap.WriteRecap(env.Out)
	}
	if err != nil {
		return recap, s.explain(err, rec.Dir)
	}
	fmt.Fprintf(env.Out, "\netcd restored from %s (revision %d) with token %s.\n", env.Snapshot.Path, env.Snapshot.Revision, env.Token)
	fmt.Fprint(env.Out, s.SetAsideText())
	fmt.Fprintf(env.Out, "Run record: %s\n", rec.Dir)
	return recap, nil
}

// SetAsideText lists, per etcd host, what the swap moves aside and the
// command that puts it back.
func (s *Session) SetAsideText() string {
	var b strings.Builder
	b.WriteString("Old etcd data is kept, never deleted. Per host, what is set aside and how to put it back:\n")
	for _, m := range s.Env.Members {
		v, ok := s.Env.Fact(m.Host.Name, steps.FactSetAside)
		if !ok {
			continue
		}
		sa := v.(steps.SetAside)
		fmt.Fprintf(&b, "  %s: %s\n    put back: %s\n", sa.Host, strings.Join(sa.Paths, ", "), sa.PutBack)
	}
	return b.String()
}

// explain turns a run failure into what happened and what to do next.
func (s *Session) explain(err error, recordDir string) error {
	var b strings.Builder
	b.WriteString(err.Error())
	resume := func(step string) {
		who := "-i " + s.req.Inventory
		if s.req.Cluster != "" {
			who = s.req.Cluster
		}
		fmt.Fprintf(&b, "\nAfter fixing the cause, resume with:\n  ezrestore restore %s --snapshot %s --from-step %s\n(the token %s is reused from the run record)",
			who, orchestrator.Quote(s.Env.Snapshot.Path), orchestrator.Quote(step), s.Env.Token)
	}
	var se *orchestrator.StepError
	var ie *orchestrator.InterruptedError
	switch {
	case errors.As(err, &se):
		if s.readOnlyThrough(se.Index) {
			b.WriteString("\nNothing was changed on any host.")
			break
		}
		if se.Index >= s.actionIndex("etcd-swap") {
			b.WriteString("\n" + s.SetAsideText())
		} else {
			b.WriteString("\nThe old etcd data is still in place: the swap had not run.")
		}
		resume(se.Step)
	case errors.As(err, &ie):
		resume(ie.NextStep)
	}
	fmt.Fprintf(&b, "\nRun record: %s", recordDir)
	return errors.New(b.String())
}

// actionIndex is the index of the first step running action.
func (s *Session) actionIndex(action string) int {
	for i, st := range s.Env.Playbook.Steps {
		if st.Action == action {
			return i
		}
	}
	return len(s.Env.Playbook.Steps)
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
