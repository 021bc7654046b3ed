package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// EtcdHealth waits until the cluster is really healthy: every member answers,
// one leader, one cluster ID, distinct member IDs, member lists equal to the
// inventory, revision at least the one the run wants (a restore: the
// snapshot's; a rollback: any, the old data's own). It polls every 250 ms up
// to --health-timeout, and stops early when a member's unit failed or keeps
// restarting. On failure it prints each failing host's last etcd log lines;
// the caller prints how to go on. Restore and rollback use it, each telling
// it through HealthChecked what to judge.
type EtcdHealth struct{ s HealthChecked }

// HealthChecked is a run's state as the health step needs it.
type HealthChecked interface{ HealthCheck() HealthCheck }

// HealthCheck is what the health step judges and how long it waits.
type HealthCheck struct {
	Members []inventory.EtcdMember
	// Etcd gives what planning learned of a member's etcd unit.
	Etcd func(host string) (*etcdhost.EtcdFacts, error)
	// MinRevision is the revision every member must have reached (0: any).
	MinRevision int64
	// Timeout is the operator's --health-timeout (0: DefaultHealthTimeout).
	Timeout time.Duration
	// On names the data, for messages: "" or " on the old data".
	On string
}

const opHealth = "etcd-health"

// PollInterval is the pause between two health rounds.
const PollInterval = 250 * time.Millisecond

// DefaultHealthTimeout bounds the wait when the operator sets none.
const DefaultHealthTimeout = 120 * time.Second

// healthTimeout is the operator's --health-timeout, or the default.
func healthTimeout(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return DefaultHealthTimeout
}

// HealthCheck: a restore's members must reach the snapshot's revision.
func (r *Restore) HealthCheck() HealthCheck {
	return HealthCheck{Members: r.Members, Etcd: r.Etcd, MinRevision: r.Snapshot.Revision, Timeout: r.HealthTimeout}
}

// HealthCheck: a rollback's members come back on the old data, at its own revision.
func (rb *Rollback) HealthCheck() HealthCheck {
	return HealthCheck{Members: rb.Members, Etcd: rb.Etcd, Timeout: rb.HealthTimeout, On: " on the old data"}
}

func (e *EtcdHealth) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	hc := e.s.HealthCheck()
	var cmds []string
	for _, h := range hosts {
		f, err := hc.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, h.Name+": "+etcdhost.ClientFor(f).StatusCommand())
	}
	desc := fmt.Sprintf("every %v up to %v: all %d members answer, one leader, one cluster ID, member list as in the inventory",
		PollInterval, healthTimeout(hc.Timeout), len(hc.Members))
	if hc.MinRevision > 0 {
		desc += fmt.Sprintf(", revision >= %d", hc.MinRevision)
	}
	op := &orchestrator.Op{Kind: opHealth, Desc: desc}
	return &orchestrator.StepPlan{ReadOnly: true, Notes: cmds, Tasks: []*orchestrator.Task{{Ops: []*orchestrator.Op{op}}}}, nil
}

func (e *EtcdHealth) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, _ transport.Conn) (orchestrator.OpResult, error) {
	hc := e.s.HealthCheck()
	timeout := healthTimeout(hc.Timeout)
	t0 := time.Now()
	deadline := t0.Add(timeout)
	last := ""
	var v etcdhost.Verdict
	var st []etcdhost.MemberStatus
	baseline := readUnits(ctx, env, memberHosts(hc.Members), etcdUnit)
	nextUnitCheck := t0.Add(time.Second)
	for {
		st = etcdhost.ReadStatus(ctx, env, env.Forks, hc.Members, hc.Etcd)
		v = etcdhost.Evaluate(st, hc.Members, hc.MinRevision)
		if v.Healthy {
			res := orchestrator.OpResult{Duration: time.Since(t0), Message: fmt.Sprintf("%s after %.2fs", v.Summary, time.Since(t0).Seconds())}
			res.Stdout = statusLines(st)
			return res, nil
		}
		if v.Summary != last {
			env.Printf("  waiting (%.1fs): %s\n", time.Since(t0).Seconds(), v.Summary)
			last = v.Summary
		}
		// A member whose unit failed or keeps restarting will not become
		// healthy by waiting: stop within seconds, not at the timeout.
		if time.Now().After(nextUnitCheck) {
			nextUnitCheck = time.Now().Add(time.Second)
			if stuck := hopeless(etcdUnit, baseline, readUnits(ctx, env, memberHosts(downMembers(hc.Members, st)), etcdUnit)); len(stuck) > 0 {
				return orchestrator.OpResult{Duration: time.Since(t0), Stdout: statusLines(st)}, failure(ctx, env, hc, stuck, nil)
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return orchestrator.OpResult{Duration: time.Since(t0), Stdout: statusLines(st)},
				fmt.Errorf("interrupted while waiting for health: %s", v.Summary)
		case <-time.After(PollInterval):
		}
	}
	// The hosts to show: those that do not answer; when all answer but
	// disagree (a split brain), every one.
	var show []string
	for _, s := range st {
		if s.Error != "" {
			show = append(show, s.Host)
		}
	}
	if len(show) == 0 {
		for _, s := range st {
			show = append(show, s.Host)
		}
	}
	return orchestrator.OpResult{Duration: time.Since(t0), Stdout: statusLines(st)},
		failure(ctx, env, hc, nil, fmt.Errorf("etcd is not healthy%s after %v:\n  - %s", hc.On, timeout, strings.Join(v.Problems, "\n  - ")), show...)
}

// failure is the health step's report: one block per host, what is wrong and
// its last etcd log lines. The put-back commands are the caller's to print,
// once, with how to go on.
func failure(ctx context.Context, env *orchestrator.Env, hc HealthCheck, stuck map[string]string, timedOut error, down ...string) error {
	var b strings.Builder
	hosts := down
	if timedOut != nil {
		b.WriteString(timedOut.Error())
	} else {
		b.WriteString("etcd cannot start on ")
		for _, m := range hc.Members {
			if _, ok := stuck[m.Host.Name]; ok {
				hosts = append(hosts, m.Host.Name)
			}
		}
		b.WriteString(strings.Join(hosts, ", ") + "; waiting longer would not help")
	}
	for _, h := range hosts {
		fmt.Fprintf(&b, "\n\nhost %s:", h)
		if why := stuck[h]; why != "" {
			fmt.Fprintf(&b, " %s", why)
		}
		conn, err := env.Conn(h)
		if err != nil {
			fmt.Fprintf(&b, " %v", err)
			continue
		}
		r, err := conn.Run(context.WithoutCancel(ctx), "journalctl -u etcd.service -n 10 --no-pager -o cat 2>&1")
		if err == nil {
			fmt.Fprintf(&b, "\n  last etcd log lines (journalctl -u etcd -n 10):\n    %s", strings.ReplaceAll(strings.TrimSpace(string(r.Stdout)), "\n", "\n    "))
		}
	}
	return errors.New(b.String())
}

// unitState is what systemd says of a unit on a host.
type unitState struct {
	Active, Sub, Result string
	Restarts            int
}

const etcdUnit = "etcd.service"

func memberHosts(members []inventory.EtcdMember) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = m.Host.Name
	}
	return out
}

// readUnits reads one unit's state on each host, all at once. A host that
// cannot be asked is left out.
func readUnits(ctx context.Context, env *orchestrator.Env, hosts []string, unit string) map[string]unitState {
	states := make([]*unitState, len(hosts))
	fanout.Each(ctx, len(hosts), env.Forks, func(ctx context.Context, i int) error {
		conn, err := env.Conn(hosts[i])
		if err != nil {
			return err
		}
		res, err := conn.Run(ctx, "systemctl show "+transport.Quote(unit)+" -p ActiveState -p SubState -p Result -p NRestarts")
		if err != nil || res.ExitCode != 0 {
			return fmt.Errorf("systemctl show failed")
		}
		u := &unitState{}
		for _, l := range strings.Split(string(res.Stdout), "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
			switch k {
			case "ActiveState":
				u.Active = v
			case "SubState":
				u.Sub = v
			case "Result":
				u.Result = v
			case "NRestarts":
				u.Restarts, _ = strconv.Atoi(v)
			}
		}
		states[i] = u
		return nil
	})
	out := map[string]unitState{}
	for i, u := range states {
		if u != nil {
			out[hosts[i]] = *u
		}
	}
	return out
}

func downMembers(members []inventory.EtcdMember, st []etcdhost.MemberStatus) []inventory.EtcdMember {
	var out []inventory.EtcdMember
	for i, s := range st {
		if s.Error != "" {
			out = append(out, members[i])
		}
	}
	return out
}

// hopeless picks the hosts whose unit failed, is waiting to restart after
// a failed start, or restarted since the wait began, with why.
func hopeless(unit string, baseline, now map[string]unitState) map[string]string {
	out := map[string]string{}
	for host, u := range now {
		restarts := u.Restarts - baseline[host].Restarts
		switch {
		case u.Active == "failed":
			out[host] = fmt.Sprintf("%s failed (result %s)", unit, u.Result)
		case u.Sub == "auto-restart" || restarts > 0:
			out[host] = fmt.Sprintf("%s keeps restarting (%s/%s, result %s, %d restarts, %d since the start)", unit, u.Active, u.Sub, u.Result, u.Restarts, restarts)
		}
	}
	return out
}

func statusLines(st []etcdhost.MemberStatus) string {
	var b strings.Builder
	for _, s := range st {
		if s.Error != "" {
			fmt.Fprintf(&b, "%s %s error: %s\n", s.Host, s.Endpoint, s.Error)
			continue
		}
		fmt.Fprintf(&b, "%s %s member %x cluster %x leader %x term %d index %d revision %d\n",
			s.Host, s.Endpoint, s.MemberID, s.ClusterID, s.Leader, s.RaftTerm, s.RaftIndex, s.Revision)
	}
	return b.String()
}
