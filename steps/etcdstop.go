package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/orchestrator/fanout"
	"github.com/ezrestore/ezrestore/orchestrator/transport"
)

// EtcdStop stops etcd on every member quickly and cleanly: it asks the
// members who leads, stops the followers all at once, then the leader.
//
// Why this order: a leader that is told to stop first hands leadership to a
// peer. Stopped together with its peers it waits for a hand-over that cannot
// happen (etcd's request timeout, seconds); stopped one after another every
// member may become leader in turn and hand over again. A follower stops at
// once, and a leader whose peers are all gone has no one to hand over to and
// stops at once too. Every stop is still systemd's clean stop (SIGTERM,
// etcd's own shutdown), checked afterwards like the systemd action does.
//
// The leader is only known at run time (it may change between `plan` and the
// run), so the plan holds one op of this action's own kind, and the op asks
// again when it runs. The plan shows the leader of the moment and the order.
// When no member names a leader (no quorum, etcd already down), every member
// is stopped at once: with no leader there is no hand-over to wait for.
//
// Params: units (default [etcd]): the units to stop on each member.
type EtcdStop struct{ r *Restore }

const opEtcdStop = "etcd-stop"

// etcdStopStatusTimeout bounds the one status round that finds the leader.
const etcdStopStatusTimeout = 3 * time.Second

// Units lists the units this step stops (see UnitUser).
func (EtcdStop) Units(step *orchestrator.Step) ([]string, error) {
	units, err := step.Params.Strings("units")
	if err != nil {
		return nil, err
	}
	if len(units) == 0 {
		units = []string{"etcd"}
	}
	return units, nil
}

func (e *EtcdStop) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	units, err := e.Units(step)
	if err != nil {
		return nil, err
	}
	cmd, err := SystemdCommand("stopped", units, false)
	if err != nil {
		return nil, err
	}
	members, err := e.members(hosts)
	if err != nil {
		return nil, err
	}
	sp := &orchestrator.StepPlan{}
	// What the order would be now: a read-only status round.
	sctx, cancel := context.WithTimeout(ctx, etcdStopStatusTimeout)
	leader, _ := LeaderOf(ReadStatus(sctx, env, members, e.r.Etcd))
	cancel()
	followers, last := StopOrder(hostNames(hosts), leader)
	if last != "" {
		sp.Notes = append(sp.Notes, fmt.Sprintf("leader now: %s (asked again when the step runs)", last),
			fmt.Sprintf("order: followers %s all at once, then the leader %s", strings.Join(followers, ", "), last))
	} else {
		sp.Notes = append(sp.Notes, "no member names a leader now: if none does when the step runs, all are stopped at once")
	}
	for _, h := range hosts {
		sp.Notes = append(sp.Notes, h.Name+": "+firstLineOf(cmd)+" (then checks each unit is inactive)")
	}
	op := &orchestrator.Op{Kind: opEtcdStop, Changes: true,
		Desc: fmt.Sprintf("ask the %d members who leads (etcdctl endpoint status), stop %s on the followers at once, then on the leader", len(hosts), strings.Join(units, ", ")),
		Args: map[string]string{"units": strings.Join(units, " "), "hosts": strings.Join(hostNames(hosts), " "), "step": step.Name}}
	sp.Tasks = []*orchestrator.Task{{Ops: []*orchestrator.Op{op}}}
	return sp, nil
}

func (e *EtcdStop) members(hosts []*inventory.Host) ([]inventory.EtcdMember, error) {
	var out []inventory.EtcdMember
	for _, h := range hosts {
		m, ok := e.r.Member(h.Name)
		if !ok {
			return nil, fmt.Errorf("host %s is not an etcd member of the inventory: this action stops etcd members only", h.Name)
		}
		out = append(out, m)
	}
	return out, nil
}

// LeaderOf is the host whose member the answering members agree leads, or ""
// with the reason when there is none (no answers, no leader, disagreement).
func LeaderOf(st []MemberStatus) (string, string) {
	byID := map[uint64]string{}
	for _, s := range st {
		if s.Error == "" && s.MemberID != 0 {
			byID[s.MemberID] = s.Host
		}
	}
	var leader uint64
	answered := 0
	for _, s := range st {
		if s.Error != "" {
			continue
		}
		answered++
		if s.Leader == 0 {
			continue
		}
		if leader != 0 && s.Leader != leader {
			return "", "members disagree on the leader"
		}
		leader = s.Leader
	}
	switch {
	case answered == 0:
		return "", "no member answered"
	case leader == 0:
		return "", "no member names a leader"
	}
	h, ok := byID[leader]
	if !ok {
		return "", fmt.Sprintf("the leader %x did not answer itself", leader)
	}
	return h, ""
}

// StopOrder splits hosts into the followers (stopped first, together) and the
// leader (stopped last). With no leader known every host is in the first group.
func StopOrder(hosts []string, leader string) (first []string, last string) {
	for _, h := range hosts {
		if h == leader {
			last = h
			continue
		}
		first = append(first, h)
	}
	return first, last
}

func (e *EtcdStop) Exec(ctx context.Context, env *orchestrator.Env, _ *orchestrator.Task, op *orchestrator.Op, _ transport.Conn) (orchestrator.OpResult, error) {
	t0 := time.Now()
	units := strings.Fields(op.Args["units"])
	hostList := strings.Fields(op.Args["hosts"])
	cmd, err := SystemdCommand("stopped", units, false)
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	var hosts []*inventory.Host
	for _, name := range hostList {
		h := env.Inventory.Host(name)
		if h == nil {
			return orchestrator.OpResult{}, fmt.Errorf("host %s: not in the inventory any more", name)
		}
		hosts = append(hosts, h)
	}
	members, err := e.members(hosts)
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	// The status round runs on a context Ctrl-C does not cancel: once the op
	// started it finishes, like every command of a step.
	steady := context.WithoutCancel(ctx)
	sctx, cancel := context.WithTimeout(steady, etcdStopStatusTimeout)
	st := ReadStatus(sctx, env, members, e.r.Etcd)
	cancel()
	leader, why := LeaderOf(st)
	first, last := StopOrder(hostList, leader)
	var log []string
	if last != "" {
		log = append(log, fmt.Sprintf("leader: %s (status round %.3fs)", last, time.Since(t0).Seconds()))
	} else {
		log = append(log, fmt.Sprintf("no leader known (%s): stopping all at once", why))
	}

	stop := func(group []string, phase string) error {
		p0 := time.Now()
		errs := fanout.Each(steady, len(group), env.Forks, func(ctx context.Context, i int) error {
			h := group[i]
			h0 := time.Now()
			err := stopOn(ctx, env, h, cmd)
			d := time.Since(h0)
			status := "changed"
			msg := phase
			if err != nil {
				status, msg = "failed", phase+": "+err.Error()
			}
			env.Record.Event(orchestrator.Event{Step: op.Args["step"], Host: h, Status: status, Message: msg, Duration: d.Seconds()})
			if err != nil {
				return fmt.Errorf("host %s: %w", h, err)
			}
			return nil
		})
		log = append(log, fmt.Sprintf("%s: %s stopped in %.3fs", phase, strings.Join(group, ", "), time.Since(p0).Seconds()))
		var bad []string
		for _, err := range errs {
			if err != nil {
				bad = append(bad, err.Error())
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("stopping %s: %s", strings.Join(units, ", "), strings.Join(bad, "; "))
		}
		return nil
	}
	res := func() orchestrator.OpResult {
		return orchestrator.OpResult{Duration: time.Since(t0), Stdout: statusLines(st) + strings.Join(log, "\n") + "\n"}
	}
	if len(first) > 0 {
		phase := "followers"
		if last == "" {
			phase = "all members"
		}
		if err := stop(first, phase); err != nil {
			return res(), err
		}
	}
	if last != "" {
		if err := stop([]string{last}, "leader"); err != nil {
			return res(), err
		}
	}
	r := res()
	if last != "" {
		r.Message = fmt.Sprintf("followers first, then the leader %s, in %.2fs", last, time.Since(t0).Seconds())
	} else {
		r.Message = fmt.Sprintf("all at once (%s), in %.2fs", why, time.Since(t0).Seconds())
	}
	return r, nil
}

// stopOn runs the stop-and-verify command on one host.
func stopOn(ctx context.Context, env *orchestrator.Env, host, cmd string) error {
	conn, err := env.Conn(host)
	if err != nil {
		return err
	}
	r, err := conn.Run(ctx, cmd)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		msg := strings.TrimSpace(string(r.Stderr))
		if msg == "" {
			msg = strings.TrimSpace(string(r.Stdout))
		}
		return fmt.Errorf("exit status %d: %s; see `journalctl -u etcd` on the host", r.ExitCode, msg)
	}
	return nil
}

func hostNames(hosts []*inventory.Host) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h.Name
	}
	return out
}

func firstLineOf(s string) string {
	lines := strings.Split(s, "\n")
	for _, l := range lines {
		if l != "set -e" && strings.TrimSpace(l) != "" {
			return l
		}
	}
	return s
}
