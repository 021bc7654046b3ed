package steps

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// scriptedConn answers etcdctl with a canned member view and journalctl with log lines.
type scriptedConn struct {
	h      *inventory.Host
	status string
}

func (c scriptedConn) Host() *inventory.Host { return c.h }
func (c scriptedConn) Run(ctx context.Context, cmd string) (transport.Result, error) {
	if strings.HasPrefix(cmd, "journalctl") {
		return transport.Result{Stdout: []byte("etcd[1]: log line from " + c.h.Name + "\n")}, nil
	}
	return transport.Result{Stdout: []byte(c.status)}, nil
}
func (scriptedConn) Upload(context.Context, string, string, os.FileMode, func(int64)) error {
	return nil
}
func (scriptedConn) Download(context.Context, string, string, func(int64)) error { return nil }
func (scriptedConn) Close() error                                                { return nil }

type conns map[string]transport.Conn

func (c conns) Get(h string) (transport.Conn, bool) { v, ok := c[h]; return v, ok }

// A data dir restored once and copied: every host is its own leader with the
// same member ID. The health step must not call that healthy; on timeout it
// must show each host's etcd log and how to put the old data back.
func TestHealthTimeoutOnSplitBrainShowsLogsAndPutBack(t *testing.T) {
	ms := threeMembers()
	r := &Restore{Members: ms, Token: "tok", HealthTimeout: 600 * time.Millisecond, Snapshot: SnapshotRef{Revision: 4}}
	env := &orchestrator.Env{Out: &strings.Builder{}, Unreachable: map[string]error{}}
	cs := conns{}
	for i, m := range ms {
		// Same member ID everywhere, each its own leader, different raft index.
		status := fmt.Sprintf(`[{"Endpoint":"x","Status":{"header":{"cluster_id":1,"member_id":42,"revision":4,"raft_term":2},"version":"3.4.23","dbSize":1,"leader":42,"raftIndex":%d,"raftTerm":2}}]
{"header":{},"members":[{"ID":42,"name":"default","peerURLs":["http://localhost:2380"]}]}`, 10+i)
		cs[m.Host.Name] = scriptedConn{h: m.Host, status: status}
		r.Host(m.Host.Name).Etcd = &etcdhost.EtcdFacts{Etcdctl: "/bin/etcdctl", Config: &etcdhost.EtcdConfig{DataDir: "/var/lib/etcd", ClientURLs: m.ClientURL}}
		r.Host(m.Host.Name).SetAside = &SetAside{Host: m.Host.Name, PutBack: "put-back-on-" + m.Host.Name}
	}
	env.Conns = cs
	t0 := time.Now()
	_, err := (&EtcdHealth{r}).Exec(context.Background(), env, nil, &orchestrator.Op{}, nil)
	if err == nil {
		t.Fatal("a split brain was taken for healthy")
	}
	// It waited out the timeout (a lower bound holds on any machine); the
	// upper one only catches a wait that ignores it.
	if d := time.Since(t0); d < 600*time.Millisecond || d > time.Minute {
		t.Fatalf("gave up after %v, want the 600ms timeout", d)
	}
	msg := err.Error()
	for _, want := range []string{"more than one leader", "report member ID 2a", "log line from 10.0.0.2", "host 10.0.0.3:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	// The put-back commands are printed once, by the restore, not here too.
	if strings.Contains(msg, "put-back-on") {
		t.Errorf("the step's report repeats the put-back commands:\n%s", msg)
	}
	if n := strings.Count(msg, "\n") + 1; n > 40 {
		t.Errorf("the report runs to %d lines for three members:\n%s", n, msg)
	}
}

// Healthy on the first poll returns at once.
func TestHealthReturnsWhenHealthy(t *testing.T) {
	ms := threeMembers()
	r := &Restore{Members: ms, Token: "tok", HealthTimeout: time.Minute, Snapshot: SnapshotRef{Revision: 9}}
	env := &orchestrator.Env{Unreachable: map[string]error{}}
	cs := conns{}
	ids := []uint64{0xa1, 0xb2, 0xc3}
	var list []string
	for i, m := range ms {
		list = append(list, fmt.Sprintf(`{"ID":%d,"name":%q,"peerURLs":[%q]}`, ids[i], m.Name, m.PeerURL))
	}
	for i, m := range ms {
		status := fmt.Sprintf(`[{"Endpoint":"x","Status":{"header":{"cluster_id":7,"member_id":%d,"revision":9,"raft_term":2},"version":"3.4.23","dbSize":1,"leader":178,"raftIndex":8,"raftTerm":2}}]
{"header":{},"members":[%s]}`, ids[i], strings.Join(list, ","))
		cs[m.Host.Name] = scriptedConn{h: m.Host, status: status}
		r.Host(m.Host.Name).Etcd = &etcdhost.EtcdFacts{Etcdctl: "/bin/etcdctl", Config: &etcdhost.EtcdConfig{ClientURLs: m.ClientURL}}
	}
	env.Conns = cs
	res, err := (&EtcdHealth{r}).Exec(context.Background(), env, nil, &orchestrator.Op{}, nil)
	if err != nil || !strings.HasPrefix(res.Message, "healthy") {
		t.Fatalf("want healthy, got %v %+v", err, res)
	}
}

// stuckConn is a member whose etcd does not answer and whose unit keeps
// restarting, as systemd reports it.
type stuckConn struct{ scriptedConn }

func (c stuckConn) Run(ctx context.Context, cmd string) (transport.Result, error) {
	switch {
	case strings.HasPrefix(cmd, "systemctl show"):
		return transport.Result{Stdout: []byte("ActiveState=activating\nSubState=auto-restart\nResult=exit-code\nNRestarts=54\n")}, nil
	case strings.HasPrefix(cmd, "journalctl"):
		return transport.Result{Stdout: []byte("etcd.service: Control process exited, code=exited, status=1/FAILURE\n")}, nil
	}
	return transport.Result{ExitCode: 1, Stderr: []byte("context deadline exceeded")}, nil
}

// A member whose unit cannot start is not waited on for the whole timeout:
// the step gives up within seconds and names the host, with its log.
func TestHealthGivesUpOnAUnitThatCannotStart(t *testing.T) {
	ms := threeMembers()
	r := &Restore{Members: ms, Token: "tok", HealthTimeout: time.Minute}
	env := &orchestrator.Env{Out: &strings.Builder{}, Unreachable: map[string]error{}}
	cs := conns{}
	for _, m := range ms {
		r.Host(m.Host.Name).Etcd = &etcdhost.EtcdFacts{Etcdctl: "/bin/etcdctl", Config: &etcdhost.EtcdConfig{ClientURLs: m.ClientURL}}
		cs[m.Host.Name] = scriptedConn{h: m.Host, status: "[]"}
	}
	cs[ms[2].Host.Name] = stuckConn{scriptedConn{h: ms[2].Host}}
	env.Conns = cs
	// The timeout is a minute: the words below are the early give-up's, a
	// wait that ran it out would say it timed out.
	_, err := (&EtcdHealth{r}).Exec(context.Background(), env, nil, &orchestrator.Op{}, nil)
	if err == nil {
		t.Fatal("healthy with a member that cannot start")
	}
	for _, want := range []string{"etcd cannot start on 10.0.0.3", "keeps restarting", "status=1/FAILURE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
}

func threeMembers() []inventory.EtcdMember {
	var ms []inventory.EtcdMember
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		ms = append(ms, inventory.EtcdMember{Host: &inventory.Host{Name: ip}, Name: "etcd-" + ip, PeerURL: "https://" + ip + ":2380"})
	}
	return ms
}
