package steps

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// Preflight checks every host before anything changes, read-only and in
// parallel: root through SSH and sudo, the units later steps touch, and on
// etcd hosts how etcd is started, the restore tool, and free space. Any
// disagreement between the unit and what the restore would use is an error
// here, before a single service stops.
type Preflight struct{}

func init() { orchestrator.RegisterAction("preflight", Preflight{}) }

const factEtcd = "etcd"

// FactsOf returns what preflight learned about an etcd host.
func FactsOf(env *orchestrator.Env, host string) (*EtcdFacts, error) {
	v, ok := env.Fact(host, factEtcd)
	if !ok {
		return nil, fmt.Errorf("host %s: no preflight facts; the playbook must run the preflight action on etcd hosts before this step", host)
	}
	return v.(*EtcdFacts), nil
}

// unitsNeeded lists, per host, the units the playbook's systemd steps touch.
func unitsNeeded(env *orchestrator.Env) (map[string][]string, error) {
	need := map[string][]string{}
	for _, st := range env.Playbook.Steps {
		if st.Action != "systemd" {
			continue
		}
		units, err := st.Params.Strings("units")
		if err != nil {
			return nil, fmt.Errorf("step %q: %w", st.Name, err)
		}
		for _, h := range orchestrator.HostsOf(env.Inventory, st.Hosts) {
			for _, u := range units {
				if !contains(need[h.Name], u) {
					need[h.Name] = append(need[h.Name], u)
				}
			}
		}
	}
	return need, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func (Preflight) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	need, err := unitsNeeded(env)
	if err != nil {
		return nil, err
	}
	sp := &orchestrator.StepPlan{ReadOnly: true, DoneAtPlan: true, Parallel: true}
	tasks := make([]*orchestrator.Task, len(hosts))
	var mu sync.Mutex
	var errs *multierror.Error
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, env.Opts.Forks))
	for i, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, h *inventory.Host) {
			defer wg.Done()
			defer func() { <-sem }()
			checks, err := preflightHost(ctx, env, h, need[h.Name])
			tasks[i] = &orchestrator.Task{Host: h.Name, Checks: checks}
			if err != nil {
				mu.Lock()
				errs = multierror.Append(errs, fmt.Errorf("host %s: %w", h.Name, err))
				mu.Unlock()
			}
		}(i, h)
	}
	wg.Wait()
	if errs == nil {
		if err := checkMembersTogether(env); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if errs != nil {
		sort.Slice(errs.Errors, func(i, j int) bool { return errs.Errors[i].Error() < errs.Errors[j].Error() })
		errs.ErrorFormat = bulletList
		return nil, errs
	}
	sp.Tasks = tasks
	return sp, nil
}

func bulletList(es []error) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = "  - " + strings.ReplaceAll(e.Error(), "\n", "\n    ")
	}
	return fmt.Sprintf("%d problem(s):\n%s", len(es), strings.Join(lines, "\n"))
}

func preflightHost(ctx context.Context, env *orchestrator.Env, h *inventory.Host, units []string) ([]string, error) {
	conn, err := env.Conn(h.Name)
	if err != nil {
		return nil, err
	}
	var checks []string
	// One round trip for root and the units.
	var b strings.Builder
	b.WriteString("echo @@uid; id -u\n")
	for i, u := range units {
		fmt.Fprintf(&b, "echo @@unit%d; systemctl cat -- %s >/dev/null 2>&1 && echo yes || echo no\n", i, orchestrator.Quote(u+".service"))
	}
	res, err := conn.Run(ctx, b.String())
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("cannot run commands as root: %s", strings.TrimSpace(string(res.Stderr)))
	}
	s := sections(string(res.Stdout))
	if strings.TrimSpace(s["uid"]) != "0" {
		return nil, fmt.Errorf("commands run as uid %q, not root: set ansible_become=true with passwordless sudo, or connect as root", strings.TrimSpace(s["uid"]))
	}
	checks = append(checks, fmt.Sprintf("ssh as %s, root through %s", h.User, map[bool]string{true: "sudo", false: "login"}[h.Become || h.User != "root"]))
	var missing []string
	for i, u := range units {
		if strings.TrimSpace(s[fmt.Sprintf("unit%d", i)]) != "yes" {
			missing = append(missing, u+".service")
		}
	}
	if len(missing) > 0 {
		return checks, fmt.Errorf("units not installed: %s (a later step stops or starts them; remove them from the playbook if this host does not run them)", strings.Join(missing, ", "))
	}
	if len(units) > 0 {
		checks = append(checks, "units present: "+strings.Join(units, ", "))
	}
	if !h.InGroup(inventory.GroupEtcd) {
		return checks, nil
	}
	f, err := GatherEtcd(ctx, conn, h)
	if err != nil {
		return checks, err
	}
	env.SetFact(h.Name, factEtcd, f)
	more, err := checkEtcdHost(env, h, f)
	return append(checks, more...), err
}

// checkEtcdHost compares the unit with what the restore will use.
func checkEtcdHost(env *orchestrator.Env, h *inventory.Host, f *EtcdFacts) ([]string, error) {
	m, ok := env.Member(h.Name)
	if !ok {
		return nil, fmt.Errorf("not an etcd member of the inventory")
	}
	c := f.Config
	var errs []string
	if c.Name != m.Name {
		errs = append(errs, fmt.Sprintf("etcd.service starts etcd with name %q (%s) but the inventory names this member %q; a restore under %q would make etcd stop with \"member unknown\". Set etcd_member_name=%s on this host in the inventory, or fix the unit",
			c.Name, c.From["name"], m.Name, m.Name, c.Name))
	}
	if FirstURL(c.PeerURL) != m.PeerURL {
		errs = append(errs, fmt.Sprintf("etcd.service advertises peer URL %s (%s) but the inventory gives %s; peers would reject each other with \"ID mismatch\". Set etcd_peer_url=%s on this host, or fix the unit",
			c.PeerURL, c.From["initial-advertise-peer-urls"], m.PeerURL, FirstURL(c.PeerURL)))
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
	if f.Etcdctl == "" {
		errs = append(errs, "no etcdctl in bin_dir or PATH: the health check needs it")
	}
	need := 3 * env.Snapshot.Size
	if f.FreeBytes < need {
		errs = append(errs, fmt.Sprintf("only %s free where %s lives; the restore needs 3x the snapshot, %s",
			orchestrator.HumanBytes(f.FreeBytes), c.DataDir, orchestrator.HumanBytes(need)))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	checks := []string{
		fmt.Sprintf("etcd.service: name %s, peer URL %s, data dir %s%s, runs as %s, now %s", c.Name, FirstURL(c.PeerURL), c.DataDir, walNote(c.WalDir), c.User, f.Active),
		fmt.Sprintf("restore tool %s, etcdctl %s", f.ToolLabel(), f.EtcdctlVersion),
		fmt.Sprintf("%s free for a %s snapshot", orchestrator.HumanBytes(f.FreeBytes), orchestrator.HumanBytes(env.Snapshot.Size)),
	}
	notes := []string{}
	if env.Opts.BumpRevision && !f.BumpRevision {
		notes = append(notes, f.ToolLabel()+" has no --bump-revision: revisions rewind to the snapshot's, Kubernetes watchers may miss changes until they relist")
	}
	if !f.MemberDir {
		notes = append(notes, "no "+c.DataDir+"/member now: nothing to set aside")
	}
	env.SetFact(h.Name, orchestrator.FactMemberTool, f.ToolLabel())
	env.SetFact(h.Name, orchestrator.FactMemberNotes, notes)
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
func checkMembersTogether(env *orchestrator.Env) error {
	for _, m := range env.Members {
		if _, err := FactsOf(env, m.Host.Name); err != nil {
			return fmt.Errorf("etcd member %s on %s was not checked: the preflight step must target the etcd group", m.Name, m.Host.Name)
		}
	}
	return nil
}
