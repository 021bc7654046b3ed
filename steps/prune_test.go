package steps

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/playbooks"
	"github.com/ezrestore/ezrestore/transport"
)

// rmConn answers the removal script as a host would: each path it names is
// removed, except fail (rm fails) and gone (no longer there).
type rmConn struct {
	h          *inventory.Host
	fail, gone string
	ran        *[]string
	mu         *sync.Mutex
}

func (c rmConn) Host() *inventory.Host { return c.h }
func (c rmConn) Run(ctx context.Context, cmd string) (transport.Result, error) {
	c.mu.Lock()
	*c.ran = append(*c.ran, c.h.Name)
	c.mu.Unlock()
	var out strings.Builder
	rc := 0
	for _, l := range strings.Split(cmd, "\n") {
		p, ok := strings.CutPrefix(l, "rmx ")
		if !ok {
			continue
		}
		p = strings.Trim(p, "'")
		switch p {
		case c.fail:
			out.WriteString("failed\t" + p + "\n")
			rc = 1
		case c.gone:
			out.WriteString("absent\t" + p + "\n")
		default:
			out.WriteString("removed\t" + p + "\n")
		}
	}
	r := transport.Result{Stdout: []byte(out.String()), ExitCode: rc}
	if rc != 0 {
		r.Stderr = []byte("rm: cannot remove: Device or resource busy")
	}
	return r, nil
}
func (rmConn) Upload(context.Context, string, string, os.FileMode, func(int64)) error { return nil }
func (rmConn) Download(context.Context, string, string, func(int64)) error            { return nil }
func (rmConn) Close() error                                                           { return nil }

// Prune runs on the engine: the built-in playbook confirms, then removes on
// each host what was chosen for it, and keeps per path what happened.
func TestPruneRemovesThroughTheEngine(t *testing.T) {
	f := &etcdhost.EtcdFacts{Config: &etcdhost.EtcdConfig{DataDir: "/var/lib/etcd"}}
	aside := func(tok string) etcdhost.Leftover {
		return etcdhost.Leftover{Kind: etcdhost.KindAside, Path: "/var/lib/etcd/member.before-" + tok, Token: tok, Bytes: 10}
	}
	p := &Prune{Yes: true, Remove: map[string]PruneHost{
		"10.0.0.1": {Etcd: f, Leftovers: []etcdhost.Leftover{aside("t1"), aside("t2")}},
		"10.0.0.2": {Etcd: f, Leftovers: []etcdhost.Leftover{aside("t1"), aside("t2")}},
	}}
	actions := PruneActions(p)
	pb, err := orchestrator.ParsePlaybook(playbooks.Prune, playbooks.PruneName, actions)
	if err != nil {
		t.Fatal(err)
	}
	inv := &inventory.Inventory{}
	var ran []string
	mu := &sync.Mutex{}
	cs := conns{}
	for _, m := range threeMembers() {
		m.Host.Groups = []string{"etcd"}
		inv.Hosts = append(inv.Hosts, m.Host)
		cs[m.Host.Name] = rmConn{h: m.Host, ran: &ran, mu: mu}
	}
	cs["10.0.0.2"] = rmConn{h: inv.Hosts[1], ran: &ran, mu: mu, fail: "/var/lib/etcd/member.before-t2", gone: "/var/lib/etcd/member.before-t1"}
	env := &orchestrator.Env{Inventory: inv, Playbook: pb, Actions: actions, Conns: cs, Unreachable: map[string]error{}, Out: &strings.Builder{}}
	plan, err := orchestrator.BuildPlan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = orchestrator.Run(context.Background(), env, plan)
	var se *orchestrator.StepError
	if !errors.As(err, &se) || se.Step != "remove leftovers" || strings.Join(se.Hosts(), ",") != "10.0.0.2" || !strings.Contains(err.Error(), "Device or resource busy") {
		t.Fatalf("a failed removal should fail the step on its host: %v", err)
	}
	if len(ran) != 2 {
		t.Errorf("ran on %v; 10.0.0.3 has nothing chosen", ran)
	}
	got, ok := p.Removed([]string{"10.0.0.1", "10.0.0.2", "10.0.0.3"})
	var lines []string
	for _, r := range got {
		lines = append(lines, r.Host+" "+r.Path[len("/var/lib/etcd/"):]+" "+strings.SplitN(r.Result, ":", 2)[0])
	}
	want := "10.0.0.1 member.before-t1 removed|10.0.0.1 member.before-t2 removed|10.0.0.2 member.before-t1 absent|10.0.0.2 member.before-t2 failed"
	if !ok || strings.Join(lines, "|") != want {
		t.Fatalf("removed %q, want %q", lines, want)
	}

	// A path that is not a name ezrestore makes is refused before anything runs.
	p.Remove["10.0.0.3"] = PruneHost{Etcd: f, Leftovers: []etcdhost.Leftover{{Kind: etcdhost.KindAside, Path: "/var/lib/etcd/member", Token: "t1"}}}
	if _, err := orchestrator.BuildPlan(context.Background(), env); err == nil || !strings.Contains(err.Error(), "host 10.0.0.3: refusing to remove /var/lib/etcd/member") {
		t.Fatalf("plan of a live dir: %v", err)
	}
}
