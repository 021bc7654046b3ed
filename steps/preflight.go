package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// Preflight checks every host before anything changes, read-only and in
// parallel: root through SSH and sudo, the units later steps touch, and on
// etcd hosts how etcd is started, the restore tool, and free space. Any
// disagreement between the unit and what the restore would use is an error
// here, before a single service stops.
type Preflight struct{ r *Restore }

// UnitUser is implemented by actions that stop or start units: preflight
// checks, on every host, that the units the playbook touches exist.
type UnitUser interface {
	Units(step *orchestrator.Step) ([]string, error)
}

// UnitSetter is implemented by actions that leave their units in one state
// on every host they target, so a failed run can say what it left stopped.
type UnitSetter interface {
	UnitUser
	// Leaves is "stopped" or "started".
	Leaves(step *orchestrator.Step) (string, error)
}

// unitsNeeded lists, per host, the units the playbook's steps touch.
func unitsNeeded(env *orchestrator.Env) (map[string][]string, error) {
	need := map[string][]string{}
	for i := range env.Playbook.Steps {
		st := &env.Playbook.Steps[i]
		uu, ok := env.Actions[st.Action].(UnitUser)
		if !ok {
			continue
		}
		units, err := uu.Units(st)
		if err != nil {
			return nil, fmt.Errorf("step %q: %w", st.Name, err)
		}
		for _, h := range orchestrator.HostsOf(env.Inventory, st.Hosts) {
			for _, u := range units {
				if !slices.Contains(need[h.Name], u) {
					need[h.Name] = append(need[h.Name], u)
				}
			}
		}
	}
	return need, nil
}

func (p *Preflight) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	need, err := unitsNeeded(env)
	if err != nil {
		return nil, err
	}
	p.startEncryptionScan(hosts)
	tasks := make([]*orchestrator.Task, len(hosts))
	errs := fanout.Each(ctx, len(hosts), env.Forks, func(ctx context.Context, i int) error {
		h := hosts[i]
		checks, err := p.host(ctx, env, h, need[h.Name])
		if err == nil && h.InGroup(inventory.GroupMaster) {
			var keys string
			if keys, err = p.checkEncryptionKeys(ctx, env, h.Name); keys != "" {
				checks = append(checks, keys)
			}
		}
		tasks[i] = &orchestrator.Task{Host: h.Name, Checks: checks}
		if err != nil {
			return &transport.HostError{Host: h.Name, Err: err}
		}
		return nil
	})
	var problems orchestrator.Problems
	for _, err := range errs {
		if err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) == 0 {
		if err := p.r.SnapshotReady(); err != nil {
			return nil, err
		}
		if err := p.checkMembersTogether(env); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
		return nil, problems
	}
	return &orchestrator.StepPlan{ReadOnly: true, DoneAtPlan: true, Parallel: true, Tasks: tasks}, nil
}

func (p *Preflight) host(ctx context.Context, env *orchestrator.Env, h *inventory.Host, units []string) ([]string, error) {
	conn, err := env.Conn(h.Name)
	if err != nil {
		return nil, err
	}
	// Root and the units: on an etcd host in the first round trip of what
	// is gathered about etcd, elsewhere on their own.
	var b strings.Builder
	b.WriteString("echo @@uid; id -u\n")
	if len(units) > 0 {
		// One systemctl for all the units (it fails if any is missing);
		// one per unit only then, to name the missing ones.
		var all []string
		for _, u := range units {
			all = append(all, u+".service")
		}
		fmt.Fprintf(&b, "echo @@units; if systemctl cat -- %s >/dev/null 2>&1; then echo all; else\n", transport.QuoteAll(all...))
		for i, u := range units {
			fmt.Fprintf(&b, "echo @@unit%d; systemctl cat -- %s >/dev/null 2>&1 && echo yes || echo no\n", i, transport.Quote(u+".service"))
		}
		b.WriteString("fi\n")
	}
	var checks []string
	checkAccess := func(s map[string]string, stderr string) error {
		uid, ran := s["uid"]
		if !ran {
			return fmt.Errorf("cannot run commands as root: %s", stderr)
		}
		if strings.TrimSpace(uid) != "0" {
			return fmt.Errorf("commands run as uid %q, not root: set ansible_become=true with passwordless sudo, or connect as root", strings.TrimSpace(s["uid"]))
		}
		checks = append(checks, fmt.Sprintf("ssh as %s, root through %s", h.User, map[bool]string{true: "sudo", false: "login"}[h.Become || h.User != "root"]))
		var missing []string
		for i, u := range units {
			if strings.TrimSpace(s["units"]) != "all" && strings.TrimSpace(s[fmt.Sprintf("unit%d", i)]) != "yes" {
				missing = append(missing, u+".service")
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("units not installed: %s (a later step stops or starts them; remove them from the playbook if this host does not run them)", strings.Join(missing, ", "))
		}
		if len(units) > 0 {
			checks = append(checks, "units present: "+strings.Join(units, ", "))
		}
		return nil
	}
	if !h.InGroup(inventory.GroupEtcd) {
		res, err := conn.Run(ctx, b.String())
		if err != nil {
			return nil, err
		}
		return checks, checkAccess(etcdhost.Sections(string(res.Stdout)), strings.TrimSpace(string(res.Stderr)))
	}
	// Who leads, for the stop step's plan, in the same round trips.
	f, err := etcdhost.GatherEtcdWith(ctx, conn, h, etcdhost.GatherMore{First: b.String(), Check: checkAccess, Leader: true, Cache: p.r.Probes})
	if err != nil {
		return checks, err
	}
	p.r.Host(h.Name).Etcd = f
	more, err := p.checkEtcdHost(h, f)
	checks = append(checks, more...)
	// Room for what the restore writes, on each filesystem it lands on: the
	// one judgment here that needs the snapshot, checked meanwhile.
	if err := p.r.SnapshotReady(); err != nil {
		return checks, err
	}
	space, spaceErr := etcdhost.PreflightSpace(ctx, conn, f, p.r.Snapshot.Size)
	if spaceErr != nil {
		return checks, errors.Join(err, spaceErr)
	}
	return append(checks, space), err
}

// checkEtcdHost compares the unit with what the restore will use.
func (p *Preflight) checkEtcdHost(h *inventory.Host, f *etcdhost.EtcdFacts) ([]string, error) {
	m, ok := p.r.Member(h.Name)
	if !ok {
		return nil, fmt.Errorf("not an etcd member of the inventory")
	}
	c := f.Config
	var errs []string
	if c.Name != m.Name {
		errs = append(errs, fmt.Sprintf("etcd.service starts etcd with name %q (%s) but the inventory names this member %q; a restore under %q would make etcd stop with \"member unknown\". Set etcd_member_name=%s on this host in the inventory, or fix the unit",
			c.Name, c.From["name"], m.Name, m.Name, c.Name))
	}
	if etcdhost.FirstURL(c.PeerURL) != m.PeerURL {
		errs = append(errs, fmt.Sprintf("etcd.service advertises peer URL %s (%s) but the inventory gives %s; peers would reject each other with \"ID mismatch\". Set etcd_peer_url=%s on this host, or fix the unit",
			c.PeerURL, c.From["initial-advertise-peer-urls"], m.PeerURL, etcdhost.FirstURL(c.PeerURL)))
	}
	if v, ok := h.Var("ETCD_DATA_DIR"); ok && v != "" && strings.TrimRight(v, "/") != strings.TrimRight(c.DataDir, "/") {
		errs = append(errs, fmt.Sprintf("etcd.service uses data dir %s (%s) but the inventory's ETCD_DATA_DIR is %s", c.DataDir, c.From["data-dir"], v))
	}
	if v, ok := h.Var("ETCD_WAL_DIR"); ok && v != "" && strings.TrimRight(v, "/") != strings.TrimRight(c.WalDir, "/") {
		errs = append(errs, fmt.Sprintf("etcd.service uses WAL dir %q (%s) but the inventory's ETCD_WAL_DIR is %s", c.WalDir, c.From["wal-dir"], v))
	}
	if _, err := f.RestoreTool(); err != nil {
		errs = append(errs, err.Error())
	}
	errs = append(errs, f.VersionProblems()...)
	if f.Etcdctl == "" {
		errs = append(errs, "no etcdctl in bin_dir or PATH: the health check needs it")
	}
	certProblems, certWarnings := etcdhost.CheckCerts(c, f.Certs, time.Now())
	errs = append(errs, certProblems...)
	errs = append(errs, etcdhost.LayoutProblems(f)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	tools := fmt.Sprintf("etcd server %s (%s); restore tool %s (%s)", f.ServerVersion, c.Binary, f.ToolLabel(), f.RestoreToolWhere())
	if f.Etcdutl != "" {
		tools += fmt.Sprintf("; etcdctl %s (%s)", f.EtcdctlVersion, f.Where(f.Etcdctl, f.EtcdctlFromPath))
	}
	checks := []string{
		fmt.Sprintf("etcd.service: name %s, peer URL %s, data dir %s%s, runs as %s, now %s", c.Name, etcdhost.FirstURL(c.PeerURL), c.DataDir, walNote(c.WalDir), c.User, f.Active),
		tools,
	}
	checks = append(checks, etcdhost.LayoutLines(f)...)
	if e := etcdhost.EarliestExpiry([]*etcdhost.EtcdFacts{f}); e != nil {
		checks = append(checks, fmt.Sprintf("%d certificate files valid, the first to expire: %s", len(f.Certs), e.FileText(time.Now())))
	}
	notes := f.PathNotes()
	notes = append(notes, certWarnings...)
	if p.r.BumpRevision && !f.BumpRevision {
		notes = append(notes, f.ToolLabel()+" has no --bump-revision: revisions rewind to the snapshot's, Kubernetes watchers may miss changes until they relist")
	}
	if !f.MemberDir {
		notes = append(notes, "no "+c.DataDir+"/member now: nothing to set aside")
	}
	p.r.Host(h.Name).Notes = notes
	return checks, nil
}

func walNote(w string) string {
	if w == "" {
		return ""
	}
	return " (WAL in " + w + ")"
}

// checkMembersTogether checks what no single host can: every inventory member
// was checked (a playbook whose preflight misses the etcd group is refused).
func (p *Preflight) checkMembersTogether(env *orchestrator.Env) error {
	for _, m := range p.r.Members {
		if err, bad := env.Unreachable[m.Host.Name]; bad {
			// The true cause (refused, host key, sudo password), not a
			// complaint about the playbook: an etcd host is never skipped.
			return &transport.HostError{Host: m.Host.Name, Err: fmt.Errorf("etcd member %s: no connection, and a restore needs every member: %w", m.Name, err)}
		}
		if _, err := p.r.Etcd(m.Host.Name); err != nil {
			return fmt.Errorf("etcd member %s on %s was not checked: the preflight step must target the etcd group", m.Name, m.Host.Name)
		}
	}
	if !p.r.BumpRevision {
		p.r.Warnings = append(p.r.Warnings, fmt.Sprintf("--no-bump-revision: revisions rewind to the snapshot's (%d). Kubernetes watchers (kubelets, controllers, informers, kubectl -w) holding a later resourceVersion are not sent 410 Gone and do not relist: their caches keep objects deleted since the snapshot and miss ones the restore brought back, until each restarts. Restart them after the restore, or drop --no-bump-revision", p.r.Snapshot.Revision))
	}
	if p.r.BumpRevision {
		hosts := make([]string, len(p.r.Members))
		facts := make([]*etcdhost.EtcdFacts, len(p.r.Members))
		for i, m := range p.r.Members {
			hosts[i], facts[i] = m.Host.Name, p.r.Host(m.Host.Name).Etcd
		}
		if err := etcdhost.BumpMismatch(hosts, facts); err != nil {
			return err
		}
	}
	return nil
}
