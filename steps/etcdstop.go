package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// EtcdStop stops etcd on every member quickly and cleanly: it asks the
// members who leads, tells the followers to stop (all at once), then stops
// the leader while the followers finish.
//
// Why this order (measured on the lab, etcd 3.6): a leader told to stop
// hands leadership to a peer first. Stopped together with its peers it waits
// for a hand-over that cannot complete (etcd's request timeout, seconds);
// stopped one after another every member may lead and hand over in turn. A
// follower does not hand over, and drops its peer streams within
// milliseconds of SIGTERM, but its shutdown then waits up to a second for
// the leader's connections to its peer port. So: followers get SIGTERM
// first; the leader, which by then has no active peer to hand over to, stops
// at once, and its going ends the connections the followers wait on. Every
// stop is systemd's own (SIGTERM, etcd's clean shutdown), and each unit is
// checked inactive afterwards as the systemd action does.
//
// The leader is only known at run time (it may change between `plan` and the
// run), so the plan holds one op of this action's own kind. When the run's
// own preflight read every member moments ago (at most leaderFresh), the op
// goes by that reading; otherwise (a `plan` long ago, an operator who took
// minutes to confirm) it asks again, one `etcdctl endpoint status` per
// member, at once, in the round trip that signals the followers. The plan
// shows the leader of the moment and the order. When no member names a
// leader (no quorum, etcd already down), all are stopped at once: with no
// leader there is no hand-over to wait for. If a follower cannot be told to
// stop, the leader is left running and the step fails naming the host.
//
// A reading that went stale in those seconds (an election between preflight
// and the stop) costs time, not safety: the real leader, signalled with the
// followers, hands over or waits out etcd's request timeout, and still stops
// cleanly.
//
// Params: units (default [etcd]): the units to stop on each member.
type EtcdStop struct{ r *Restore }

const opEtcdStop = "etcd-stop"

// etcdStopStatusTimeout bounds the one status round that finds the leader.
const etcdStopStatusTimeout = 3 * time.Second

// leaderFresh is how old preflight's reading of the leader may be for the
// stop to go by it rather than ask again. Asking costs a round trip and an
// etcdctl on each member (0.13 s of a 0.4 s step on the lab); leadership
// moves only on an election, and a wrong guess only costs time (see above).
const leaderFresh = 30 * time.Second

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

// Leaves says etcd is stopped after this step (see UnitSetter).
func (EtcdStop) Leaves(*orchestrator.Step) (string, error) { return "stopped", nil }

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
	leader, _ := etcdhost.LeaderOf(e.planStatus(ctx, env, members))
	followers, last := etcdhost.StopOrder(inventoryNames(hosts), leader)
	if last != "" {
		sp.Notes = append(sp.Notes, fmt.Sprintf("leader now: %s (the step goes by this reading when it runs within %s of it, else it asks again)", last, leaderFresh),
			fmt.Sprintf("order: followers %s first, all at once, then the leader %s", strings.Join(followers, ", "), last))
	} else {
		sp.Notes = append(sp.Notes, "no member names a leader now: if none does when the step runs, all are stopped at once")
	}
	for _, h := range hosts {
		f, err := e.r.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		sp.Notes = append(sp.Notes, h.Name+": 1. "+indent(askAndSignalCommand(etcdhost.ClientFor(f), units)),
			h.Name+": 1. (when preflight's reading is at most "+leaderFresh.String()+" old, on the followers only) "+indent(signalCommand(units)),
			h.Name+": 2. "+indent(cmd))
	}
	op := &orchestrator.Op{Kind: opEtcdStop, Changes: true,
		Desc:    fmt.Sprintf("go by preflight's reading of who leads when it is fresh, else ask the %d members (etcdctl endpoint status); signal %s to stop on the followers at once, then stop the leader's while the followers finish; check each inactive", len(hosts), strings.Join(units, ", ")),
		Payload: etcdStopPayload{Units: units, Hosts: inventoryNames(hosts)}}
	sp.Tasks = []*orchestrator.Task{{Ops: []*orchestrator.Op{op}}}
	return sp, nil
}

// etcdStopPayload is the stop op's units and the members it stops.
type etcdStopPayload struct {
	Units []string `json:"units"`
	Hosts []string `json:"hosts"`
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

// roleLeader and roleFollower are what the first phase's command prints.
const (
	roleLeader   = "ezrestore-role: leader"
	roleFollower = "ezrestore-role: follower"
)

// askAndSignalCommand is the first phase on one member, in one round trip:
// ask the member itself who leads (`etcdctl endpoint status`, printed for
// the record); a leader only says so; any other member (a follower, or one
// that does not answer or knows no leader) asks systemd to stop its units
// without waiting (signalCommand).
func askAndSignalCommand(c etcdhost.EtcdClient, units []string) string {
	status := c.Cmd("--dial-timeout=1s", "--command-timeout=2s", "-w", "json", "endpoint", "status")
	return fmt.Sprintf(`st=$(%s 2>&1); rc=$?
printf '%%s\n' "$st"
me=$(printf '%%s' "$st" | sed -n 's/.*"member_id":\([0-9]*\).*/\1/p' | head -n 1)
ld=$(printf '%%s' "$st" | sed -n 's/.*"leader":\([0-9]*\).*/\1/p' | head -n 1)
if [ "$rc" -eq 0 ] && [ -n "$me" ] && [ "$me" = "$ld" ]; then echo %s; exit 0; fi
%s`,
		status, transport.Quote(roleLeader), signalCommand(units))
}

// signalCommand tells a follower's systemd to stop its units without
// waiting for the stop to end. systemctl returns once the stop job is
// queued, and systemd starts it at once (the unit is "deactivating" by the
// time a process could ask); the leader's head start (leaderHeadStart) is
// counted from this command's return. A unit that cannot be stopped (missing,
// RefuseManualStop=) fails here, and the leader is then left running.
func signalCommand(units []string) string {
	return fmt.Sprintf("echo %s\nsystemctl stop --no-block -- %s", transport.Quote(roleFollower), transport.QuoteAll(units...))
}

// knownLeader is the leader as this run's preflight read it, when it read
// every member at most leaderFresh ago (ok false otherwise: ask again).
// A member whose etcd was not running then counts as not leading.
func (e *EtcdStop) knownLeader(hosts []string) (leader string, age time.Duration, ok bool) {
	var st []etcdhost.MemberStatus
	for _, h := range hosts {
		f, err := e.r.Etcd(h)
		if err != nil || f.GatheredAt.IsZero() {
			return "", 0, false
		}
		age = max(age, time.Since(f.GatheredAt))
		switch {
		case age > leaderFresh:
			return "", age, false
		case f.Leader != nil:
			st = append(st, *f.Leader)
		case f.Active != "" && f.Active != "active":
			st = append(st, etcdhost.MemberStatus{Host: h, Error: "etcd was " + f.Active})
		default:
			return "", age, false
		}
	}
	leader, _ = etcdhost.LeaderOf(st)
	return leader, age, true
}

func (e *EtcdStop) Exec(ctx context.Context, env *orchestrator.Env, _ *orchestrator.Task, op *orchestrator.Op, _ transport.Conn) (orchestrator.OpResult, error) {
	t0 := time.Now()
	pl, err := orchestrator.PayloadOf[etcdStopPayload](op)
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	units, hostList := pl.Units, pl.Hosts
	stopCmd, err := SystemdCommand("stopped", units, false)
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
	if _, err := e.members(hosts); err != nil {
		return orchestrator.OpResult{}, err
	}
	var log []string
	res := func() orchestrator.OpResult {
		return orchestrator.OpResult{Duration: time.Since(t0), Stdout: strings.Join(log, "\n") + "\n"}
	}
	// run runs, at once, on each host of group the command of this phase,
	// recorded as the runner records its own tasks. Once started it
	// finishes, like every command of a step: Ctrl-C does not leave half
	// the members stopped.
	run := func(group []string, phase string, cmdFor func(h string) (string, error)) ([]string, []error) {
		runs := env.RunOnHosts(ctx, group, func(h string) (*orchestrator.Op, error) {
			cmd, err := cmdFor(h)
			return &orchestrator.Op{Kind: orchestrator.OpRun, Desc: phase, Cmd: cmd, Changes: true}, err
		})
		outs, errs := make([]string, len(runs)), make([]error, len(runs))
		for i, r := range runs {
			outs[i] = r.Result.Stdout
			if r.Err != nil {
				errs[i] = fmt.Errorf("host %s: %w", r.Host, r.Err)
			}
		}
		return outs, errs
	}
	failed := func(errs ...[]error) error {
		var bad []string
		for _, es := range errs {
			for _, err := range es {
				if err != nil {
					bad = append(bad, err.Error())
				}
			}
		}
		if len(bad) == 0 {
			return nil
		}
		return fmt.Errorf("stopping %s: %s (`journalctl -u %s` on the host says more)", strings.Join(units, ", "), strings.Join(bad, "; "), units[0])
	}

	// 1. Every member is asked who leads, on its own host, and every member
	// that does not lead is told to stop, in one round trip. A follower's
	// etcd drops its peer streams within milliseconds of SIGTERM, so the
	// leader sees no active peer when its own turn comes.
	// When preflight read every member moments ago, the followers are
	// only signalled: the leader is not asked again.
	var leaders, followers []string
	signalled := hostList
	var outs []string
	var errs []error
	if leader, age, ok := e.knownLeader(hostList); ok {
		if leader != "" {
			leaders = []string{leader}
			signalled = slices.DeleteFunc(slices.Clone(hostList), func(h string) bool { return h == leader })
		}
		log = append(log, fmt.Sprintf("leader as preflight read it %.1fs ago: %s", age.Seconds(), orNone(leaders)))
		outs, errs = run(signalled, "signal a follower to stop (leader as preflight read it)", func(string) (string, error) {
			return signalCommand(units), nil
		})
	} else {
		outs, errs = run(hostList, "ask who leads; signal a follower to stop", func(h string) (string, error) {
			f, err := e.r.Etcd(h)
			if err != nil {
				return "", err
			}
			return askAndSignalCommand(etcdhost.ClientFor(f), units), nil
		})
	}
	for i, h := range signalled {
		switch {
		case strings.Contains(outs[i], roleLeader):
			leaders = append(leaders, h)
		case strings.Contains(outs[i], roleFollower):
			followers = append(followers, h)
		}
	}
	log = append(log, fmt.Sprintf("signalled in %.3fs: leader %s, followers signalled %s",
		time.Since(t0).Seconds(), orNone(leaders), orNone(followers)))
	if err := failed(errs); err != nil {
		log = append(log, "a member could not be asked or signalled; the leader was left running: "+orNone(leaders))
		return res(), err
	}
	// 2. The leader stops (no peer to hand over to, so no wait) while the
	// followers finish theirs: a follower's etcd waits up to a second for
	// the leader's connections to its peer port, which end with the leader.
	// Each unit is then checked inactive, as the systemd action checks.
	// A SIGTERM'd follower drops its peer streams within milliseconds, and
	// the leader notices at its next message to it (a heartbeat, every
	// 100 ms by etcd's default). A leader told to stop before that still
	// counts the follower as a peer, hands leadership to it and waits out
	// etcd's request timeout: 7 s, in one run of six on the lab. So the
	// leader's stop starts one heartbeat later (leaderHeadStart): measured
	// on the lab: 42 back-to-back restores with a head start of 80-150 ms,
	// none waited (stop etcd 0.21-0.45 s).
	p1 := time.Now()
	var fErrs []error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, fErrs = run(followers, "follower: wait for the stop, check", func(string) (string, error) { return stopCmd, nil })
	}()
	_, lErrs := run(leaders, "leader: one heartbeat after the followers, stop, check", func(string) (string, error) {
		return leaderHeadStart + stopCmd, nil
	})
	<-done
	log = append(log, fmt.Sprintf("leader and followers stopped and checked in %.3fs", time.Since(p1).Seconds()))
	if err := failed(fErrs, lErrs); err != nil {
		return res(), err
	}
	r := res()
	switch len(leaders) {
	case 0:
		r.Message = fmt.Sprintf("no member leads: all stopped at once, in %.2fs", time.Since(t0).Seconds())
	default:
		r.Message = fmt.Sprintf("followers first, then the leader %s, in %.2fs", strings.Join(leaders, ", "), time.Since(t0).Seconds())
	}
	return r, nil
}

// leaderHeadStart is how long the followers' stop runs before the leader's:
// one heartbeat at etcd's default interval.
const leaderHeadStart = "sleep 0.1\n"

func orNone(hosts []string) string {
	if len(hosts) == 0 {
		return "none"
	}
	return strings.Join(hosts, ", ")
}

// planStatus is who leads, for the plan's note: what preflight read with the
// facts (moments ago, in the same planning), or a round of its own when the
// facts lack it. A member whose etcd was not running then is not asked.
func (e *EtcdStop) planStatus(ctx context.Context, env *orchestrator.Env, members []inventory.EtcdMember) []etcdhost.MemberStatus {
	out := make([]etcdhost.MemberStatus, len(members))
	for i, m := range members {
		if f, err := e.r.Etcd(m.Host.Name); err == nil {
			if st := f.Leader; st != nil {
				out[i] = *st
				continue
			}
			if f.Active != "" && f.Active != "active" {
				out[i] = etcdhost.MemberStatus{Host: m.Host.Name, Error: "etcd was " + f.Active + " when preflight read it"}
				continue
			}
		}
		sctx, cancel := context.WithTimeout(ctx, etcdStopStatusTimeout)
		defer cancel()
		return e.leaderRound(sctx, env, members)
	}
	return out
}

// leaderRound asks each member, on its own host and all at once, for
// `etcdctl endpoint status` only (read-only): one etcdctl per host, the
// least that tells who leads (a member that leads names itself).
func (e *EtcdStop) leaderRound(ctx context.Context, env *orchestrator.Env, members []inventory.EtcdMember) []etcdhost.MemberStatus {
	out := make([]etcdhost.MemberStatus, len(members))
	fanout.Each(ctx, len(members), env.Forks, func(ctx context.Context, i int) error {
		m := members[i]
		out[i] = etcdhost.MemberStatus{Host: m.Host.Name, Endpoint: m.ClientURL}
		conn, err := env.Conn(m.Host.Name)
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		f, err := e.r.Etcd(m.Host.Name)
		if err != nil {
			out[i].Error = err.Error()
			return nil
		}
		c := etcdhost.ClientFor(f)
		out[i].Endpoint = c.Endpoint
		r, err := conn.Run(ctx, etcdhost.LeaderStatusCommand(c))
		switch {
		case err != nil:
			out[i].Error = err.Error()
		case r.ExitCode != 0:
			out[i].Error = fmt.Sprintf("etcdctl exited %d: %s", r.ExitCode, etcdhost.LastLine(string(r.Stderr)))
		default:
			etcdhost.ParseLeaderStatus(r.Stdout, &out[i])
		}
		return nil
	})
	for i := range out { // not started: the context ended
		if out[i].Host == "" {
			out[i] = etcdhost.MemberStatus{Host: members[i].Host.Name, Error: "not asked: " + context.Cause(ctx).Error()}
		}
	}
	return out
}

func inventoryNames(hosts []*inventory.Host) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h.Name
	}
	return out
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n      ") }
