package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/internal/probecache"
	"github.com/ezrestore/ezrestore/kubeapi"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/playbooks"
	"github.com/ezrestore/ezrestore/snapshot"
	"github.com/ezrestore/ezrestore/steps"
	"github.com/ezrestore/ezrestore/transport"
)

// Request is what the operator asked for.
type Request struct {
	// Target names the cluster and how to reach its hosts.
	Target cluster.Selector
	// Snapshot is a path, a file name in backup/, "latest" or "before:<time>"; "" is snapshot.db.
	// An s3://BUCKET/PREFIX[/NAME|latest|before:<time>] is downloaded first (restore/source.go);
	// member:HOST or member:freshest is a member's own db (restore/membersource.go).
	Snapshot string
	// AgeIdentity is the --age-identity file that decrypts an encrypted offsite snapshot.
	AgeIdentity string
	Playbook    string
	// Token pins --initial-cluster-token; empty: a fresh one, or the last run's with FromStep.
	Token    string
	FromStep string
	Forks    int
	// NoBumpRevision turns off --bump-revision/--mark-compacted.
	NoBumpRevision bool
	HealthTimeout  time.Duration
	// Expect are objects to find in the snapshot at plan time and read back
	// through the Kubernetes API after the restore (KIND/NAMESPACE/NAME).
	Expect []string
	// NoAPICheck skips the checks through the Kubernetes API.
	NoAPICheck bool
	Yes        bool
	// Confirm asks on a terminal; nil when there is none.
	Confirm func(summary string) (bool, error)
	Out     io.Writer
}

// Session is a prepared restore: connected, checked and planned.
type Session struct {
	Env     *orchestrator.Env
	Restore *steps.Restore
	Plan    *Plan
	// Lock, when set, is the run lock: Execute takes it on the etcd hosts,
	// records it and releases them (the caller releases the bastion's).
	Lock    *Lock
	cluster *cluster.Cluster
	pool    *transport.Pool
	req     Request
	// fetched is an offsite snapshot's temp copy, removed by Close.
	fetched interface{ Remove() error }
	// member is how a member source was chosen (--snapshot member:...).
	member *MemberSource
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
	fetched, err := fetchSnapshot(ctx, &req)
	if err != nil {
		return nil, &unchanged{err}
	}
	s, err := prepare(ctx, req)
	if err != nil {
		if s != nil {
			s.Close()
		}
		if fetched != nil {
			fetched.Remove()
		}
		return nil, &unchanged{err}
	}
	if fetched != nil {
		s.fetched = fetched
		describeFetched(s, fetched)
	}
	return s, nil
}

func prepare(ctx context.Context, req Request) (*Session, error) {
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
	r := &steps.Restore{Members: members, BumpRevision: !req.NoBumpRevision,
		HealthTimeout: req.HealthTimeout, Yes: req.Yes, Confirm: req.Confirm, NoAPICheck: req.NoAPICheck,
		Probes: probecache.Open(probecache.DefaultPath())}
	if r.Expect, err = steps.ParseExpectations(req.Expect); err != nil {
		return nil, err
	}
	if !req.NoAPICheck {
		if r.Kube, r.KubeMissing, err = findKubeconfig(cl.Dir); err != nil {
			return nil, err
		}
	}
	actions := steps.Actions(r)
	pb, err := loadPlaybook(req.Playbook, actions)
	if err != nil {
		return nil, err
	}
	if req.FromStep != "" {
		if _, err := pb.StepIndex(req.FromStep); err != nil {
			return nil, err
		}
	}
	env := &orchestrator.Env{
		Cluster: cl.Name, Inventory: cl.Inventory, Playbook: pb, Actions: actions,
		RunID: newRunID(cl.RecordDir), Forks: req.Forks, Out: req.Out,
	}
	s := &Session{Env: env, Restore: r, cluster: cl, req: req}

	// Connecting and reading the hosts wait on the network, checking the
	// snapshot on the disk and the CPU (a full read and sha256): they
	// overlap. Preflight reads the hosts meanwhile and waits for the check
	// only to judge the space; every later step plans once it is done. A bad
	// snapshot still fails before anything changes, and cuts the rest short.
	targets := orchestrator.HostsOf(cl.Inventory, playbookGroups(pb))
	fmt.Fprintf(req.Out, "Connecting to %d hosts while checking the snapshot...\n", len(targets))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	checked := make(chan struct{})
	var snapErr error
	check := func() (*steps.SnapshotRef, error) { return CheckSnapshot(cl.BackupDir, req.Snapshot) }
	if IsMemberSpec(req.Snapshot) {
		// A member source is read on the hosts: once connected (below).
		if err := memberSourceAllowed(req, pb, actions); err != nil {
			return s, err
		}
		check = func() (*steps.SnapshotRef, error) {
			ms, ref, err := resolveMemberSource(cctx, env, r, cl.BackupDir, req.Snapshot)
			s.member = ms
			return ref, err
		}
	} else {
		go checkLater(checked, check, &snapErr, cancel, r)
	}
	r.SnapshotPending = func() error {
		<-checked
		return snapErr
	}
	env.PlanGate = func(_ *orchestrator.Step, a orchestrator.Action) error {
		if _, reads := a.(*steps.Preflight); reads {
			return nil
		}
		return r.SnapshotReady()
	}
	s.pool = cl.Connect(cctx, targets, req.Forks)
	env.Conns, env.Unreachable = s.pool, s.pool.Failed()
	if IsMemberSpec(req.Snapshot) {
		go checkLater(checked, check, &snapErr, cancel, r)
	}
	undo := startUndo(cctx, env, cl, r) // what the restore would undo, read beside the planning
	if r.Token, err = chooseToken(req, cl.RecordDir); err != nil {
		return s, err
	}
	fmt.Fprintf(req.Out, "Checking hosts and planning (read-only)...\n")
	plan, err := orchestrator.BuildPlan(cctx, env)
	// The snapshot's own error comes first: the planning may only have
	// been cut short by it.
	if snapErr := r.SnapshotReady(); snapErr != nil {
		return s, snapErr
	}
	if err != nil {
		return s, err
	}
	plan.FromStep = req.FromStep
	// Only a shortcut for the next run: a cache that cannot be written costs nothing now.
	_ = r.Probes.Save()
	plan.Warnings = append(plan.Warnings, r.Warnings...)
	s.Plan = &Plan{Snapshot: r.Snapshot, Token: r.Token, Members: r.MemberPlans(), Plan: plan, MemberSource: s.member}
	s.Plan.Undo = undo()
	return s, nil
}

// checkLater checks (or, for a member source, reads and chooses) the
// snapshot beside the planning; a bad one cancels the rest.
func checkLater(checked chan struct{}, check func() (*steps.SnapshotRef, error), snapErr *error, cancel func(), r *steps.Restore) {
	defer close(checked)
	ref, err := check()
	if err != nil {
		*snapErr = err
		cancel() // no need to wait out a slow host
		return
	}
	r.Snapshot = *ref
}

// findKubeconfig reads kubeasz's <cluster dir>/kubectl.kubeconfig; when
// there is none it says why the API checks are skipped. A file that is there
// but unreadable is an error: the operator passes --no-api-check to go on.
func findKubeconfig(dir string) (*kubeapi.KubeAPI, string, error) {
	p := filepath.Join(dir, kubeapi.KubeconfigName)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Sprintf("no %s in %s (kubeasz writes it there) to reach the apiservers", kubeapi.KubeconfigName, dir), nil
	}
	k, err := kubeapi.LoadKubeconfig(p)
	if err != nil {
		return nil, "", fmt.Errorf("%w; fix it or pass --no-api-check", err)
	}
	return k, "", nil
}

func loadPlaybook(file string, actions orchestrator.Registry) (*orchestrator.Playbook, error) {
	if file != "" {
		return orchestrator.LoadPlaybookFile(file, actions)
	}
	return orchestrator.ParsePlaybook(playbooks.Restore, playbooks.RestoreName, actions)
}

// playbookGroups are all groups any step targets: the hosts to connect to.
func playbookGroups(pb *orchestrator.Playbook) []string {
	var gs []string
	for _, s := range pb.Steps {
		gs = append(gs, s.Hosts...)
	}
	return gs
}

// CheckSnapshot resolves --snapshot and checks the file on the bastion:
// readable, its sha256 trailer (if any) right, its revision readable. The
// catalog reads the file once for both the choice and these checks.
func CheckSnapshot(backupDir, spec string) (*steps.SnapshotRef, error) {
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
	return &steps.SnapshotRef{Path: e.Path, How: how, Size: e.Size, ModTime: e.Time, SHA256: e.SHA256,
		HasTrailer: e.Integrity == snapshot.IntegrityOK, Revision: e.Revision}, nil
}

// chooseToken: the pinned one; with --from-step the last run's (the staging
// paths on the hosts are named after it); else a fresh one.
func chooseToken(req Request, recordDir string) (string, error) {
	if req.Token != "" {
		return req.Token, etcdhost.ValidToken(req.Token)
	}
	if req.FromStep != "" {
		t, run, err := lastToken(recordDir)
		if err != nil {
			return "", err
		}
		if t != "" {
			fmt.Fprintf(req.Out, "Resuming with the token of run %s: %s\n", run, t)
			return t, nil
		}
		return "", fmt.Errorf("--from-step needs the token of the run it resumes, and no earlier run is recorded in %s: pass --initial-cluster-token", recordDir)
	}
	return "etcd-restore-" + time.Now().UTC().Format("20060102T150405Z"), nil
}

// lastToken is the token of the newest recorded run that changed a host
// (a refused or failed-in-preflight run left nothing behind to resume).
func lastToken(recordDir string) (token, run string, err error) {
	entries, err := os.ReadDir(recordDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("reading the run records: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() > entries[j].Name() })
	for _, e := range entries {
		dir := filepath.Join(recordDir, e.Name())
		evs, err := orchestrator.ReadEvents(dir)
		if err != nil && len(evs) == 0 {
			continue
		}
		if !orchestrator.Changed(evs) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "token"))
		if err != nil {
			return "", "", fmt.Errorf("run %s changed hosts but its token cannot be read: %w; pass --initial-cluster-token", e.Name(), err)
		}
		return trimLine(b), e.Name(), nil
	}
	return "", "", nil
}

func trimLine(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

func newRunID(recordDir string) string {
	base := time.Now().UTC().Format("20060102T150405Z")
	id := base
	for i := 2; fileExists(filepath.Join(recordDir, id)); i++ {
		id = fmt.Sprintf("%s-%d", base, i)
	}
	return id
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Close ends every connection and removes an offsite snapshot's temp copy.
func (s *Session) Close() {
	if s.pool != nil {
		s.pool.Close()
	}
	if s.fetched != nil {
		s.fetched.Remove()
	}
}
