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
// inventory, revision at least the snapshot's. It polls every 250 ms up to
// --health-timeout. On timeout it prints each failing host's last etcd log
// lines and the commands that put the old data back.
type EtcdHealth struct{ r *Restore }

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

func (e *EtcdHealth) timeout() time.Duration { return healthTimeout(e.r.HealthTimeout) }

func (e *EtcdHealth) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	var cmds []string
	for _, h := range hosts {
		f, err := e.r.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, h.Name+": "+etcdhost.ClientFor(f).StatusCommand())
	}
	op := &orchestrator.Op{Kind: opHealth,
		Desc: fmt.Sprintf("every %v up to %v: all %d members answer, one leader, one cluster ID, member list as in the inventory, revision >= %d",
			PollInterval, e.timeout(), len(e.r.Members), e.r.Snapshot.Revision),
	}
	return &orchestrator.StepPlan{ReadOnly: true, Notes: cmds, Tasks: []*orchestrator.Task{{Ops: []*orchestrator.Op{op}}}}, nil
}

func (e *EtcdHealth) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, _ transport.Conn) (orchestrator.OpResult, error) {
	min := e.r.Snapshot.Revision
	timeout := e.timeout()
	t0 := time.Now()
	deadline := t0.Add(timeout)
	last := ""
	var v etcdhost.Verdict
	var st []etcdhost.MemberStatus
	baseline := readUnits(ctx, env, memberHosts(e.r.Members), etcdUnit)
	nextUnitCheck := t0.Add(time.Second)
	for {
		st = etcdhost.ReadStatus(ctx, env, env.Forks, e.r.Members, e.r.Etcd)
		v = etcdhost.Evaluate(st, e.r.Members, min)
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
			if stuck := hopeless(etcdUnit, baseline, readUnits(ctx, env, memberHosts(downMembers(e.r.Members, st)), etcdUnit)); len(stuck) > 0 {
				return orchestrator.OpResult{Duration: time.Since(t0), Stdout: statusLines(st)}, e.failure(ctx, env, stuck, nil)
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
		e.failure(ctx, env, nil, fmt.Errorf("etcd is not healthy after %v:\n  - %s", timeout, strings.Join(v.Problems, "\n  - ")), show...)
}

// failure is the health step's report: one block per host, what is wrong and
// its last etcd log lines. The put-back commands are the caller's to print,
// once, with how to go on.
func (e *EtcdHealth) failure(ctx context.Context, env *orchestrator.Env, stuck map[string]string, timedOut error, down ...string) error {
	var b strings.Builder
	hosts := down
	if timedOut != nil {
		b.WriteString(timedOut.Error())
	} else {
		b.WriteString("etcd cannot start on ")
		for _, m := range e.r.Members {
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
