package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/orchestrator/fanout"
	"github.com/ezrestore/ezrestore/orchestrator/transport"
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

func (e *EtcdHealth) timeout() time.Duration {
	if e.r.HealthTimeout > 0 {
		return e.r.HealthTimeout
	}
	return DefaultHealthTimeout
}

func (e *EtcdHealth) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	var cmds []string
	for _, h := range hosts {
		f, err := e.r.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, h.Name+": "+ClientFor(f).StatusCommand())
	}
	op := &orchestrator.Op{Kind: opHealth,
		Desc: fmt.Sprintf("every %v up to %v: all %d members answer, one leader, one cluster ID, member list as in the inventory, revision >= %d",
			PollInterval, e.timeout(), len(e.r.Members), e.r.Snapshot.Revision),
	}
	return &orchestrator.StepPlan{ReadOnly: true, Notes: cmds, Tasks: []*orchestrator.Task{{Ops: []*orchestrator.Op{op}}}}, nil
}

// ReadStatus asks every member at once (up to env.Forks) for its own view,
// through its host's etcdctl; facts says how to reach each member's etcd.
// It is the one status reader: the restore's health step, `status` and
// `backup` all judge members by what it returns.
func ReadStatus(ctx context.Context, env *orchestrator.Env, members []inventory.EtcdMember, facts func(host string) (*EtcdFacts, error)) []MemberStatus {
	out := make([]MemberStatus, len(members))
	fanout.Each(ctx, len(members), env.Forks, func(ctx context.Context, i int) error {
		m := members[i]
		out[i] = MemberStatus{Host: m.Host.Name, Endpoint: m.ClientURL}
		conn, err := env.Conn(m.Host.Name)
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		f, err := facts(m.Host.Name)
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		qctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		out[i] = QueryMember(qctx, conn, m.Host.Name, ClientFor(f))
		return nil
	})
	for i := range out { // not started: cancelled
		if out[i].Host == "" {
			out[i] = MemberStatus{Host: members[i].Host.Name, Endpoint: members[i].ClientURL, Error: "not asked: " + context.Cause(ctx).Error()}
		}
	}
	return out
}

func (e *EtcdHealth) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, _ transport.Conn) (orchestrator.OpResult, error) {
	min := e.r.Snapshot.Revision
	timeout := e.timeout()
	t0 := time.Now()
	deadline := t0.Add(timeout)
	last := ""
	var v Verdict
	var st []MemberStatus
	for {
		st = ReadStatus(ctx, env, e.r.Members, e.r.Etcd)
		v = Evaluate(st, e.r.Members, min)
		if v.Healthy {
			res := orchestrator.OpResult{Duration: time.Since(t0), Message: fmt.Sprintf("%s after %.2fs", v.Summary, time.Since(t0).Seconds())}
			res.Stdout = statusLines(st)
			return res, nil
		}
		if v.Summary != last {
			env.Printf("  waiting (%.1fs): %s\n", time.Since(t0).Seconds(), v.Summary)
			last = v.Summary
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
	var b strings.Builder
	fmt.Fprintf(&b, "etcd is not healthy after %v: %s\n", timeout, strings.Join(v.Problems, "\n  "))
	for _, s := range st {
		if s.Error == "" && len(v.Problems) == 0 {
			continue
		}
		conn, err := env.Conn(s.Host)
		if err != nil {
			continue
		}
		r, err := conn.Run(context.WithoutCancel(ctx), "journalctl -u etcd -n 30 --no-pager 2>&1")
		if err == nil {
			fmt.Fprintf(&b, "\nlast etcd log lines on %s:\n%s", s.Host, r.Stdout)
		}
	}
	b.WriteString("\nThe old data is kept. To put it back, run on each etcd host:\n")
	for _, sa := range e.r.SetAsides() {
		fmt.Fprintf(&b, "  %s: %s\n", sa.Host, sa.PutBack)
	}
	return orchestrator.OpResult{Duration: time.Since(t0), Stdout: statusLines(st)}, errors.New(b.String())
}

func statusLines(st []MemberStatus) string {
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

// ClusterStatus is the health check on its own (`ezrestore status`): it reads
// each member's unit, read-only and all at once, then asks every member for
// its own view. A unit that cannot be read is that member's error.
func ClusterStatus(ctx context.Context, env *orchestrator.Env, members []inventory.EtcdMember) []MemberStatus {
	gathered := make([]*EtcdFacts, len(members))
	errs := fanout.Each(ctx, len(members), env.Forks, func(ctx context.Context, i int) error {
		m := members[i]
		conn, err := env.Conn(m.Host.Name)
		if err != nil {
			return err
		}
		f, err := GatherEtcd(ctx, conn, m.Host)
		if err != nil {
			return fmt.Errorf("reading the etcd unit: %w", err)
		}
		gathered[i] = f
		return nil
	})
	facts := make(map[string]*EtcdFacts, len(members))
	gatherErr := make(map[string]error, len(members))
	for i, m := range members {
		facts[m.Host.Name], gatherErr[m.Host.Name] = gathered[i], errs[i]
	}
	return ReadStatus(ctx, env, members, func(host string) (*EtcdFacts, error) {
		if err := gatherErr[host]; err != nil {
			return nil, err
		}
		return facts[host], nil
	})
}
