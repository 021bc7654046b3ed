package steps

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// etcdModel plays three etcd members the way etcd stops: a follower stops
// at once; a leader that still has a running peer hands leadership over
// first, which here takes handOver. It records the order of the stops.
type etcdModel struct {
	mu       sync.Mutex
	leader   string // host name; "" when no member answers status
	running  map[string]bool
	stopped  []string
	active   int // stops in flight at once
	maxAlive int
	failOn   string
	handOver time.Duration
	// signalled lists the hosts told to stop without waiting, in order.
	signalled  []string
	failSignal string
	waited     bool
	// asked counts the `endpoint status` calls.
	asked int
}

type modelConn struct {
	h *inventory.Host
	m *etcdModel
	// id is the member ID of this host.
	id  uint64
	ids map[string]uint64
}

func (c modelConn) Host() *inventory.Host { return c.h }
func (c modelConn) Run(ctx context.Context, cmd string) (transport.Result, error) {
	m := c.m
	if strings.Contains(cmd, "endpoint") && strings.Contains(cmd, "status") {
		m.mu.Lock()
		m.asked++
		m.mu.Unlock()
	}
	if strings.Contains(cmd, "systemctl stop --no-block") {
		// The first phase: the member says whether it leads; if not, it is
		// told to stop and the command returns once it is signalled.
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.leader != "" && m.leader == c.h.Name && m.running[c.h.Name] {
			return transport.Result{Stdout: []byte("{...}\n" + roleLeader + "\n")}, nil
		}
		if c.h.Name == m.failSignal {
			return transport.Result{ExitCode: 1, Stdout: []byte(roleFollower + "\n"), Stderr: []byte("Failed to stop etcd.service: Access denied")}, nil
		}
		m.running[c.h.Name] = false // SIGTERM sent: it drops its peers
		m.signalled = append(m.signalled, c.h.Name)
		return transport.Result{Stdout: []byte(roleFollower + "\n")}, nil
	}
	if strings.Contains(cmd, "endpoint") && strings.Contains(cmd, "status") {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.leader == "" || !m.running[c.h.Name] {
			return transport.Result{ExitCode: 1, Stderr: []byte("context deadline exceeded")}, nil
		}
		return transport.Result{Stdout: []byte(fmt.Sprintf(`[{"Endpoint":"x","Status":{"header":{"cluster_id":1,"member_id":%d,"revision":4,"raft_term":2},"version":"3.6.0","dbSize":1,"leader":%d,"raftIndex":9,"raftTerm":2}}]`, c.id, c.ids[m.leader]))}, nil
	}
	if !strings.Contains(cmd, "systemctl stop --") {
		return transport.Result{ExitCode: 2, Stderr: []byte("unexpected command " + cmd)}, nil
	}
	m.mu.Lock()
	m.active++
	m.maxAlive = max(m.maxAlive, m.active)
	peersUp := false
	for h, up := range m.running {
		if up && h != c.h.Name {
			peersUp = true
		}
	}
	wait := c.h.Name == m.leader && peersUp
	m.running[c.h.Name] = false
	m.mu.Unlock()
	if wait {
		time.Sleep(m.handOver)
	} else {
		time.Sleep(10 * time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active--
	if c.h.Name == m.failOn {
		return transport.Result{ExitCode: 1, Stderr: []byte("etcd is still active after stop")}, nil
	}
	m.stopped = append(m.stopped, c.h.Name)
	if wait {
		m.waited = true
	}
	return transport.Result{}, nil
}
func (modelConn) Upload(context.Context, string, string, os.FileMode, func(int64)) error {
	return nil
}
func (modelConn) Download(context.Context, string, string, func(int64)) error { return nil }
func (modelConn) Close() error                                                { return nil }

func stopFixture(leader string) (*EtcdStop, *orchestrator.Env, *etcdModel, []*inventory.Host) {
	ms := threeMembers()
	r := &Restore{Members: ms}
	m := &etcdModel{leader: leader, running: map[string]bool{}, handOver: 2 * time.Second}
	inv := &inventory.Inventory{}
	ids := map[string]uint64{}
	for i, mem := range ms {
		ids[mem.Host.Name] = uint64(100 + i)
	}
	cs := conns{}
	var hosts []*inventory.Host
	for _, mem := range ms {
		m.running[mem.Host.Name] = true
		cs[mem.Host.Name] = modelConn{h: mem.Host, m: m, id: ids[mem.Host.Name], ids: ids}
		r.Host(mem.Host.Name).Etcd = &etcdhost.EtcdFacts{Etcdctl: "/usr/bin/etcdctl", Config: &etcdhost.EtcdConfig{DataDir: "/var/lib/etcd", ClientURLs: "https://" + mem.Host.Name + ":2379"}}
		inv.Hosts = append(inv.Hosts, mem.Host)
		hosts = append(hosts, mem.Host)
	}
	env := &orchestrator.Env{Inventory: inv, Conns: cs, Forks: 20, Out: &strings.Builder{}, Unreachable: map[string]error{}}
	return &EtcdStop{r}, env, m, hosts
}

func planAndRun(t *testing.T, e *EtcdStop, env *orchestrator.Env, hosts []*inventory.Host) (*orchestrator.StepPlan, orchestrator.OpResult, error) {
	t.Helper()
	step := &orchestrator.Step{Name: "stop etcd", Action: "etcd-stop"}
	sp, err := e.Plan(context.Background(), env, step, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.Tasks) != 1 || len(sp.Tasks[0].Ops) != 1 {
		t.Fatalf("plan: want one task with one op, got %+v", sp.Tasks)
	}
	res, err := e.Exec(context.Background(), env, sp.Tasks[0], sp.Tasks[0].Ops[0], nil)
	return sp, res, err
}

// The followers get their stop signal first, all at once; the leader stops
// once none of its peers runs, so nothing waits for a hand-over.
func TestEtcdStopFollowersThenLeader(t *testing.T) {
	e, env, m, hosts := stopFixture("10.0.0.2")
	sp, res, err := planAndRun(t, e, env, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if m.waited {
		t.Errorf("the leader waited for a hand-over")
	}
	if len(m.signalled) != 2 || slices.Contains(m.signalled, "10.0.0.2") {
		t.Errorf("signalled %v first, want the two followers", m.signalled)
	}
	if len(m.stopped) != 3 {
		t.Errorf("stopped and checked %v, want all three", m.stopped)
	}
	notes := strings.Join(sp.Notes, "\n")
	if !strings.Contains(notes, "leader now: 10.0.0.2") || !strings.Contains(notes, "followers 10.0.0.1, 10.0.0.3 first, all at once, then the leader 10.0.0.2") {
		t.Errorf("plan notes do not show the leader and order:\n%s", notes)
	}
	if !strings.Contains(res.Message, "then the leader 10.0.0.2") {
		t.Errorf("message %q", res.Message)
	}
}

// The leader changed between plan and run: the run asks again.
func TestEtcdStopAsksAgainAtRunTime(t *testing.T) {
	e, env, m, hosts := stopFixture("10.0.0.1")
	step := &orchestrator.Step{Name: "stop etcd", Action: "etcd-stop"}
	sp, err := e.Plan(context.Background(), env, step, hosts)
	if err != nil {
		t.Fatal(err)
	}
	m.leader = "10.0.0.3"
	if _, err := e.Exec(context.Background(), env, sp.Tasks[0], sp.Tasks[0].Ops[0], nil); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(m.signalled, "10.0.0.3") || m.waited {
		t.Errorf("signalled %v first (waited for a hand-over: %v), want the leader of run time (10.0.0.3) last", m.signalled, m.waited)
	}
}

// No member answers (no quorum, etcd down): all are stopped at once.
func TestEtcdStopNoLeaderStopsAllAtOnce(t *testing.T) {
	e, env, m, hosts := stopFixture("")
	_, res, err := planAndRun(t, e, env, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.signalled) != 3 || len(m.stopped) != 3 {
		t.Errorf("signalled %v, stopped %v: want all three signalled at once, then checked", m.signalled, m.stopped)
	}
	if !strings.Contains(res.Message, "all stopped at once") {
		t.Errorf("message %q", res.Message)
	}
}

// A follower that does not stop is named; one that cannot even be told to
// stop leaves the leader running, so the cluster keeps its quorum.
func TestEtcdStopFailureNamesHost(t *testing.T) {
	e, env, m, hosts := stopFixture("10.0.0.1")
	m.failOn = "10.0.0.3"
	_, _, err := planAndRun(t, e, env, hosts)
	if err == nil || !strings.Contains(err.Error(), "host 10.0.0.3") || !strings.Contains(err.Error(), "still active") {
		t.Fatalf("err = %v, want one naming host 10.0.0.3", err)
	}

	e, env, m, hosts = stopFixture("10.0.0.1")
	m.failSignal = "10.0.0.2"
	_, _, err = planAndRun(t, e, env, hosts)
	if err == nil || !strings.Contains(err.Error(), "host 10.0.0.2") || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("err = %v, want one naming host 10.0.0.2", err)
	}
	if slices.Contains(m.stopped, "10.0.0.1") || !m.running["10.0.0.1"] {
		t.Errorf("the leader was stopped although a follower could not be told to stop: %v", m.stopped)
	}
}

func TestLeaderOf(t *testing.T) {
	ok := func(host string, id, leader uint64) etcdhost.MemberStatus {
		return etcdhost.MemberStatus{Host: host, MemberID: id, Leader: leader}
	}
	bad := etcdhost.MemberStatus{Host: "c", Error: "down"}
	for _, c := range []struct {
		name string
		st   []etcdhost.MemberStatus
		want string
	}{
		{"all agree", []etcdhost.MemberStatus{ok("a", 1, 2), ok("b", 2, 2), ok("c", 3, 2)}, "b"},
		{"one down", []etcdhost.MemberStatus{ok("a", 1, 1), ok("b", 2, 1), bad}, "a"},
		{"leader down", []etcdhost.MemberStatus{ok("a", 1, 3), ok("b", 2, 3), bad}, ""},
		{"no leader", []etcdhost.MemberStatus{ok("a", 1, 0), ok("b", 2, 0)}, ""},
		{"disagree", []etcdhost.MemberStatus{ok("a", 1, 1), ok("b", 2, 2)}, ""},
		{"none answer", []etcdhost.MemberStatus{bad}, ""},
	} {
		if got, why := etcdhost.LeaderOf(c.st); got != c.want || (got == "" && why == "") {
			t.Errorf("%s: etcdhost.LeaderOf = %q (%s), want %q", c.name, got, why, c.want)
		}
	}
}

// The plan's leader note comes from what preflight read with the facts: no
// round of its own then; a member whose etcd was not running is not asked.
func TestEtcdStopPlanUsesTheGatheredLeader(t *testing.T) {
	e, env, _, hosts := stopFixture("10.0.0.2")
	for i, h := range hosts {
		f := e.r.Host(h.Name).Etcd
		f.Active = "active"
		f.Leader = &etcdhost.MemberStatus{Host: h.Name, MemberID: uint64(100 + i), Leader: 100}
	}
	env.Conns = conns{} // a status round would find no connection
	sp, err := e.Plan(context.Background(), env, &orchestrator.Step{Name: "stop etcd", Action: "etcd-stop"}, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if notes := strings.Join(sp.Notes, "\n"); !strings.Contains(notes, "leader now: 10.0.0.1") {
		t.Errorf("plan notes do not name the gathered leader:\n%s", notes)
	}
	for _, h := range hosts {
		f := e.r.Host(h.Name).Etcd
		f.Active, f.Leader = "inactive", nil
	}
	sp, err = e.Plan(context.Background(), env, &orchestrator.Step{Name: "stop etcd", Action: "etcd-stop"}, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if notes := strings.Join(sp.Notes, "\n"); !strings.Contains(notes, "no member names a leader now") {
		t.Errorf("with etcd stopped everywhere the plan should say no member leads:\n%s", notes)
	}
}

// gatheredLeader gives every member facts read `ago` by a preflight that
// found leader leading.
func gatheredLeader(e *EtcdStop, hosts []*inventory.Host, leader string, ago time.Duration) {
	for i, h := range hosts {
		f := e.r.Host(h.Name).Etcd
		f.Active, f.GatheredAt = "active", time.Now().Add(-ago)
		var lead uint64
		for j, h2 := range hosts {
			if h2.Name == leader {
				lead = uint64(100 + j)
			}
		}
		f.Leader = &etcdhost.MemberStatus{Host: h.Name, MemberID: uint64(100 + i), Leader: lead}
	}
}

// A preflight reading of moments ago is used: no member is asked again, the
// followers are signalled and the leader it named stops last.
func TestEtcdStopGoesByAFreshReading(t *testing.T) {
	e, env, m, hosts := stopFixture("10.0.0.2")
	gatheredLeader(e, hosts, "10.0.0.2", time.Second)
	_, res, err := planAndRun(t, e, env, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if m.asked != 0 {
		t.Errorf("asked etcd %d times, want none: preflight read the leader a second ago", m.asked)
	}
	if len(m.signalled) != 2 || slices.Contains(m.signalled, "10.0.0.2") || m.waited || len(m.stopped) != 3 {
		t.Errorf("signalled %v (waited %v), stopped %v: want the two followers first, then all three stopped", m.signalled, m.waited, m.stopped)
	}
	if !strings.Contains(res.Stdout, "leader as preflight read it") || !strings.Contains(res.Message, "then the leader 10.0.0.2") {
		t.Errorf("result %q / %q does not say it went by preflight's reading", res.Stdout, res.Message)
	}

	// A reading older than leaderFresh is not trusted: the members are asked.
	e, env, m, hosts = stopFixture("10.0.0.3")
	gatheredLeader(e, hosts, "10.0.0.2", leaderFresh+time.Second)
	if _, _, err := planAndRun(t, e, env, hosts); err != nil {
		t.Fatal(err)
	}
	if m.asked != 3 || slices.Contains(m.signalled, "10.0.0.3") || m.waited {
		t.Errorf("asked %d, signalled %v (waited %v): want all three asked and the leader of run time (10.0.0.3) last", m.asked, m.signalled, m.waited)
	}
}
