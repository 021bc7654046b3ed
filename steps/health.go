package steps

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// EtcdHealth waits until the cluster is really healthy: every member answers,
// one leader, one cluster ID, distinct member IDs, member lists equal to the
// inventory, revision at least the snapshot's. It polls every 250 ms up to
// --health-timeout. On timeout it prints each failing host's last etcd log
// lines and the commands that put the old data back.
type EtcdHealth struct{}

const opHealth = "etcd-health"

// PollInterval is the pause between two health rounds.
const PollInterval = 250 * time.Millisecond

func init() {
	orchestrator.RegisterAction("etcd-health", EtcdHealth{})
	orchestrator.RegisterExecutor(opHealth, runHealth)
}

func (EtcdHealth) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	min := env.Snapshot.Revision
	var cmds []string
	for _, h := range hosts {
		f, err := FactsOf(env, h.Name)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, h.Name+": "+ClientFor(f).Command())
	}
	op := &orchestrator.Op{Kind: opHealth,
		Desc: fmt.Sprintf("every %v up to %v: all %d members answer, one leader, one cluster ID, member list as in the inventory, revision >= %d",
			PollInterval, env.Opts.HealthTimeout, len(env.Members), min),
		Args: map[string]string{"min_revision": strconv.FormatInt(min, 10)},
	}
	return &orchestrator.StepPlan{ReadOnly: true, Notes: cmds, Tasks: []*orchestrator.Task{{Ops: []*orchestrator.Op{op}}}}, nil
}

// PollStatus asks every member at once for its own view.
func PollStatus(ctx context.Context, env *orchestrator.Env) []MemberStatus {
	out := make([]MemberStatus, len(env.Members))
	var wg sync.WaitGroup
	for i, m := range env.Members {
		wg.Add(1)
		go func(i int, m inventory.EtcdMember) {
			defer wg.Done()
			out[i] = MemberStatus{Host: m.Host.Name, Endpoint: m.ClientURL}
			conn, err := env.Conn(m.Host.Name)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			f, err := FactsOf(env, m.Host.Name)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			qctx, cancel := context.WithTimeout(ctx, 8*time.Second)
			defer cancel()
			out[i] = QueryMember(qctx, conn, m.Host.Name, ClientFor(f))
		}(i, m)
	}
	wg.Wait()
	return out
}

func runHealth(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, _ orchestrator.Conn) (orchestrator.OpResult, error) {
	min, _ := strconv.ParseInt(op.Args["min_revision"], 10, 64)
	timeout := env.Opts.HealthTimeout
	if timeout <= 0 {
		timeout = 120 * time.Second
	}
	t0 := time.Now()
	deadline := t0.Add(timeout)
	last := ""
	var v Verdict
	var st []MemberStatus
	for {
		st = PollStatus(ctx, env)
		v = Evaluate(st, env.Members, min)
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
	for _, m := range env.Members {
		if v, ok := env.Fact(m.Host.Name, FactSetAside); ok {
			fmt.Fprintf(&b, "  %s: %s\n", m.Host.Name, v.(SetAside).PutBack)
		}
	}
	return orchestrator.OpResult{Duration: time.Since(t0), Stdout: statusLines(st)}, fmt.Errorf("%s", b.String())
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
func ClusterStatus(ctx context.Context, env *orchestrator.Env) []MemberStatus {
	gatherErr := make([]error, len(env.Members))
	var wg sync.WaitGroup
	for i, m := range env.Members {
		conn, err := env.Conn(m.Host.Name)
		if err != nil {
			continue // PollStatus reports it
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := GatherEtcd(ctx, conn, m.Host)
			if err != nil {
				gatherErr[i] = err
				return
			}
			env.SetFact(m.Host.Name, factEtcd, f)
		}()
	}
	wg.Wait()
	st := PollStatus(ctx, env)
	for i := range st {
		if gatherErr[i] != nil {
			st[i].Error = "reading the etcd unit: " + gatherErr[i].Error()
		}
	}
	return st
}
