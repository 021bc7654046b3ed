package steps

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// SetAsideRecord is what a restore sets aside, as data: the run record's
// set-aside.json, which `ezrestore rollback` reads to put it back.
type SetAsideRecord struct {
	RunID string `json:"run_id"`
	Token string `json:"token"`
	// SwapStep is the playbook step that moves the data: a run whose events
	// show this step changed a host has set data aside there.
	SwapStep string         `json:"swap_step"`
	Hosts    []SetAsideHost `json:"hosts"`
}

// SetAsideHost is what the swap moves on one host and where a rollback puts
// the restored data, so that nothing is deleted either way.
type SetAsideHost struct {
	Host string `json:"host"`
	// Member is the live <data-dir>/member, Aside the old one set aside,
	// Restored where a rollback moves the restored one.
	Member   string `json:"member_dir"`
	Aside    string `json:"aside"`
	Restored string `json:"restored"`
	// MemberInPlace: member/ is a mount point or a symlink; it stays where
	// it is and Aside, Restored are dirs inside it whose contents move.
	MemberInPlace bool `json:"member_in_place,omitempty"`
	// The same for the unit's --wal-dir, when it has one.
	Wal         string `json:"wal_dir,omitempty"`
	AsideWal    string `json:"aside_wal,omitempty"`
	RestoredWal string `json:"restored_wal,omitempty"`
	// WalInPlace: the WAL dir is a mount point or a symlink; it stays where
	// it is and AsideWal, RestoredWal are dirs inside it whose contents move.
	WalInPlace bool `json:"wal_in_place,omitempty"`
	// PutBack is the shell command that does it by hand.
	PutBack string `json:"put_back"`
}

// SetAsideRecord lists, per etcd host planned so far, what the swap moves.
func (r *Restore) SetAsideRecord(runID, swapStep string) SetAsideRecord {
	rec := SetAsideRecord{RunID: runID, Token: r.Token, SwapStep: swapStep}
	for _, m := range r.Members {
		f := r.Host(m.Host.Name).Etcd
		if f == nil {
			continue
		}
		st := etcdhost.StageFor(r.Token, f)
		h := SetAsideHost{Host: m.Host.Name, Member: st.Member, Aside: st.Aside, Restored: st.Restored, MemberInPlace: st.MemberInPlace, PutBack: etcdhost.PutBackCommandFor(st, r.Token, f.Config)}
		if st.LiveWal != "" {
			h.Wal, h.AsideWal, h.RestoredWal, h.WalInPlace = st.LiveWal, st.AsideWal, st.RestoredWal, st.WalInPlace
		}
		rec.Hosts = append(rec.Hosts, h)
	}
	return rec
}

// Rollback is what the rollback's steps share: the set-aside record of the
// run to undo, the members, the operator's choices, and per host what
// planning found.
type Rollback struct {
	Record  SetAsideRecord
	Members []inventory.EtcdMember
	// HealthTimeout bounds the wait for a healthy cluster.
	HealthTimeout time.Duration
	Yes           bool
	// Confirm asks the operator to type yes; nil means there is no terminal.
	Confirm func(summary string) (bool, error)

	mu    sync.Mutex
	facts map[string]*etcdhost.EtcdFacts
	done  map[string]bool
}

// RollbackActions is every action the rollback playbook may use.
func RollbackActions(rb *Rollback) orchestrator.Registry {
	return orchestrator.Registry{
		"putback-check": &PutBackCheck{rb},
		"confirm":       &Confirm{rb},
		"systemd":       Systemd{},
		"etcd-putback":  &PutBack{rb},
		"etcd-health":   &EtcdHealth{rb},
		// A rollback keeps the manifests it moves in a dir of its own.
		"static-pods": &StaticPods{func() string { return "rollback-" + rb.Record.Token }},
	}
}

// Etcd returns what the check step learned of a host's etcd unit.
func (rb *Rollback) Etcd(host string) (*etcdhost.EtcdFacts, error) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if f := rb.facts[host]; f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("host %s: its etcd unit was not read; the playbook must run the putback-check action on etcd hosts first", host)
}

func (rb *Rollback) host(name string) (SetAsideHost, bool) {
	for _, h := range rb.Record.Hosts {
		if h.Host == name {
			return h, true
		}
	}
	return SetAsideHost{}, false
}

// PutBackCheck reads, on every etcd host and read-only, the etcd unit and
// which of the run's set-aside and restored dirs exist. It refuses before
// anything stops when a host has nothing to put back, or both a set-aside
// and a restored dir beside the live one (a state only a person can sort out).
type PutBackCheck struct{ rb *Rollback }

// probeScript prints 1 or 0 per path: whether it exists.
func probeScript(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "if [ -e %s ]; then echo 1; else echo 0; fi\n", transport.Quote(p))
	}
	return b.String()
}

func (c *PutBackCheck) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	rb := c.rb
	for _, h := range rb.Record.Hosts {
		if !hostIn(h.Host, hosts) {
			return nil, fmt.Errorf("run %s set data aside on host %s, which is not an etcd host of this inventory now: put it back there by hand with: %s", rb.Record.RunID, h.Host, h.PutBack)
		}
	}
	sp := &orchestrator.StepPlan{ReadOnly: true, DoneAtPlan: true, Parallel: true}
	tasks := make([]*orchestrator.Task, len(hosts))
	errs := fanout.Each(ctx, len(hosts), env.Forks, func(ctx context.Context, i int) error {
		var err error
		tasks[i], err = c.check(ctx, env, hosts[i])
		return err
	})
	var problems orchestrator.Problems
	for i, err := range errs {
		if err != nil {
			problems = append(problems, &transport.HostError{Host: hosts[i].Name, Err: err})
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	sp.Tasks = tasks
	allDone := true
	for _, h := range hosts {
		allDone = allDone && rb.done[h.Name]
	}
	if allDone {
		return nil, fmt.Errorf("the data run %s set aside is back in place on every etcd host already (the restored data sits beside it as *.restored-%s): nothing to put back; check the cluster with `ezrestore status`", rb.Record.RunID, rb.Record.Token)
	}
	return sp, nil
}

func hostIn(name string, hosts []*inventory.Host) bool {
	for _, h := range hosts {
		if h.Name == name {
			return true
		}
	}
	return false
}

func (c *PutBackCheck) check(ctx context.Context, env *orchestrator.Env, h *inventory.Host) (*orchestrator.Task, error) {
	rb := c.rb
	sa, ok := rb.host(h.Name)
	if !ok {
		return nil, fmt.Errorf("run %s set nothing aside on this etcd host (it names %s); roll back by hand or pick the run with --run", rb.Record.RunID, hostNames(rb.Record.Hosts))
	}
	conn, err := env.Conn(h.Name)
	if err != nil {
		return nil, err
	}
	f, err := etcdhost.GatherEtcd(ctx, conn, h)
	if err != nil {
		return nil, fmt.Errorf("reading the etcd unit: %w", err)
	}
	if f.Config.DataDir+"/member" != sa.Member || f.Config.WalDir != sa.Wal {
		return nil, fmt.Errorf("the etcd unit now uses data dir %s (WAL dir %q), but run %s set aside %s (WAL dir %q): the unit changed since; put the data back by hand", f.Config.DataDir, f.Config.WalDir, rb.Record.RunID, sa.Member, sa.Wal)
	}
	if err := layoutChanged(sa, f, rb.Record.RunID); err != nil {
		return nil, err
	}
	pairs := [][3]string{{sa.Member, sa.Aside, sa.Restored}}
	if sa.Wal != "" {
		pairs = append(pairs, [3]string{sa.Wal, sa.AsideWal, sa.RestoredWal})
	}
	var paths []string
	for _, p := range pairs {
		paths = append(paths, p[:]...)
	}
	res, err := conn.Run(ctx, probeScript(paths))
	if err != nil {
		return nil, fmt.Errorf("checking the set-aside dirs: %w", err)
	}
	exist := strings.Fields(string(res.Stdout))
	if res.ExitCode != 0 || len(exist) != len(paths) {
		return nil, fmt.Errorf("checking the set-aside dirs: exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	t := &orchestrator.Task{Host: h.Name}
	done := true
	for i, p := range pairs {
		live, aside, restored := exist[3*i] == "1", exist[3*i+1] == "1", exist[3*i+2] == "1"
		switch {
		case aside && restored:
			return nil, fmt.Errorf("both %s and %s exist beside %s: refusing to guess which is which; sort them out by hand", p[1], p[2], p[0])
		case aside:
			done = false
			what := "no live dir now"
			if live {
				what = fmt.Sprintf("the live %s is moved aside as %s", p[0], p[2])
			}
			t.Checks = append(t.Checks, fmt.Sprintf("%s is set aside; %s", p[1], what))
		case restored && live:
			t.Checks = append(t.Checks, fmt.Sprintf("already put back: %s is the old data, %s the restored", p[0], p[2]))
		default:
			return nil, fmt.Errorf("nothing set aside at %s: run %s did not set data aside on this host, or it was moved by hand", p[1], rb.Record.RunID)
		}
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.facts == nil {
		rb.facts, rb.done = map[string]*etcdhost.EtcdFacts{}, map[string]bool{}
	}
	rb.facts[h.Name], rb.done[h.Name] = f, done
	return t, nil
}

func hostNames(hs []SetAsideHost) string {
	var n []string
	for _, h := range hs {
		n = append(n, h.Host)
	}
	return strings.Join(n, ", ")
}

// PutBack moves, on each host, the restored member dir (and WAL dir) aside
// as *.restored-<token> and the set-aside one back in place. Nothing is
// deleted. Right before acting it checks that etcd is not running there.
type PutBack struct{ rb *Rollback }

func (p *PutBack) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	sp := &orchestrator.StepPlan{Parallel: true}
	for _, h := range hosts {
		sa, ok := p.rb.host(h.Name)
		if !ok {
			return nil, fmt.Errorf("host %s: run %s set nothing aside here", h.Name, p.rb.Record.RunID)
		}
		cmd := "if systemctl is-active --quiet etcd; then echo 'etcd is running on this host: stop it before putting data back' >&2; exit 1; fi\n"
		if f, err := p.rb.Etcd(h.Name); err == nil && f.Config.StaticPod != nil {
			cmd = etcdhost.StaticPodStoppedScript(f.Config.StaticPod) + "\n"
		}
		if sa.MemberInPlace {
			cmd += putBackContentsScript(sa.Member, sa.Aside, sa.Restored)
		} else {
			cmd += putBackScript(sa.Member, sa.Aside, sa.Restored)
		}
		switch {
		case sa.WalInPlace:
			cmd += "\n" + putBackContentsScript(sa.Wal, sa.AsideWal, sa.RestoredWal)
		case sa.Wal != "":
			cmd += "\n" + putBackScript(sa.Wal, sa.AsideWal, sa.RestoredWal)
		}
		// The disks as the check step found them, and the old dirs' owner
		// and mode back with them (a rename carries them).
		if f, err := p.rb.Etcd(h.Name); err == nil {
			if d, ok := f.LayoutOf("data"); ok {
				cmd += "\n" + etcdhost.KeepLayoutScript(d, false)
			}
			for _, role := range []string{"member", "wal"} {
				if d, ok := f.LayoutOf(role); ok && d.InPlace() {
					cmd += "\n" + etcdhost.KeepLayoutScript(d, false)
				}
			}
		}
		sp.Notes = append(sp.Notes, fmt.Sprintf("%s: the restored data is kept at %s", h.Name, sa.Restored))
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{{
			Kind: orchestrator.OpRun, Desc: "move the restored data aside, put the old data back", Cmd: cmd, Changes: true,
		}}})
	}
	return sp, nil
}

// putBackScript moves aside back into live's place, first renaming live to
// restored. Run again, it sees the work done and changes nothing.
func putBackScript(live, aside, restored string) string {
	q := transport.Quote
	return fmt.Sprintf(`l=%[1]s a=%[2]s r=%[3]s
if [ -e "$a" ]; then
  if [ -e "$l" ]; then
    if [ -e "$r" ]; then printf 'both %%s and %%s exist beside %%s: refusing to guess, sort them out by hand\n' "$a" "$r" "$l" >&2; exit 1; fi
    mv -T -- "$l" "$r" || exit 1
    printf 'moved the restored %%s aside as %%s\n' "$l" "$r"
  fi
  mv -T -- "$a" "$l" || exit 1
  printf 'old data back at %%s\n' "$l"
elif [ -e "$r" ] && [ -e "$l" ]; then printf 'already put back: %%s is the old data, %%s the restored\n' "$l" "$r"
else printf 'nothing set aside at %%s\n' "$a" >&2; exit 1
fi`, q(live), q(aside), q(restored))
}

// putBackContentsScript is putBackScript for a live dir that stays where it
// is (a mount point, a symlink): its entries move into restored, a new dir
// inside it, then aside's entries move back into it and the empty aside goes.
func putBackContentsScript(live, aside, restored string) string {
	q := transport.Quote
	return fmt.Sprintf(`l=%[1]s a=%[2]s r=%[3]s
if [ -e "$a" ]; then
  if [ -e "$r" ]; then printf 'both %%s and %%s exist in %%s: refusing to guess, sort them out by hand\n' "$a" "$r" "$l" >&2; exit 1; fi
  mkdir -m 0700 -- "$r" || exit 1
  %[4]s || exit 1
  printf 'moved the restored contents of %%s into %%s\n' "$l" "$r"
  %[5]s && rmdir -- "$a" || exit 1
  printf 'old data back in %%s\n' "$l"
elif [ -e "$r" ]; then printf 'already put back: %%s holds the old data, %%s the restored\n' "$l" "$r"
else printf 'nothing set aside at %%s\n' "$a" >&2; exit 1
fi`, q(live), q(aside), q(restored), etcdhost.MoveContentsCommand(live, restored), etcdhost.MoveContentsCommand(aside, live))
}

// layoutChanged refuses a put-back where a dir the swap kept in place is no
// longer a mount point or a symlink, or the other way round: the put-back
// would move what the swap did not.
func layoutChanged(sa SetAsideHost, f *etcdhost.EtcdFacts, runID string) error {
	m, _ := f.LayoutOf("member")
	w, _ := f.LayoutOf("wal")
	for _, c := range []struct {
		dir      string
		was, now bool
		layout   etcdhost.DirLayout
	}{{sa.Member, sa.MemberInPlace, m.InPlace(), m}, {sa.Wal, sa.WalInPlace, w.InPlace(), w}} {
		if c.dir == "" || c.was == c.now {
			continue
		}
		was := map[bool]string{true: "a mount point or a symlink (its contents were set aside inside it)", false: "a plain dir (it was set aside beside it)"}[c.was]
		return fmt.Errorf("%s was %s when run %s set it aside, but is now %s: the disks changed since; put the data back by hand", c.dir, was, runID, layoutText(c.layout))
	}
	return nil
}

func layoutText(d etcdhost.DirLayout) string {
	if d.Path == "" {
		return "unread"
	}
	return d.Describe()
}
