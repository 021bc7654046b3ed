package restore

// What a restore would undo: the snapshot against the live cluster's etcd,
// by keys and revisions (package diff), read through each member's etcdctl
// over SSH, the paths `status` takes. `ezrestore diff` prints it; the plan
// shows its summary.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/diff"
	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/snapshot"
	"github.com/ezrestore/ezrestore/transport"
)

// Live is a cluster's etcd as a diff source. Reads go to the first member
// that answers; etcdctl's reads are linearizable, so without quorum none does.
type Live struct {
	Cluster string
	hosts   etcdhost.Hosts
	members []inventory.EtcdMember
	facts   func(ctx context.Context, host string) (*etcdhost.EtcdFacts, error)
}

func (l *Live) Name() string { return "live cluster " + l.Cluster }

// Side lists the live keys with their revisions.
func (l *Live) Side(ctx context.Context) (diff.Side, error) {
	var side diff.Side
	err := l.ask(ctx, func(ctx context.Context, conn transport.Conn, c etcdhost.EtcdClient) error {
		rev, keys, err := etcdhost.ReadKeys(ctx, conn, c)
		if err != nil {
			return err
		}
		side = diff.Side{Name: l.Name(), Revision: rev, Keys: make([]diff.Entry, len(keys))}
		for i, k := range keys {
			side.Keys[i] = diff.Entry{Key: k.Key, Create: k.CreateRevision, Mod: k.ModRevision}
		}
		return nil
	})
	return side, err
}

// Get reads one key's value.
func (l *Live) Get(ctx context.Context, key string) (*snapshot.KeyValue, error) {
	var kv *snapshot.KeyValue
	err := l.ask(ctx, func(ctx context.Context, conn transport.Conn, c etcdhost.EtcdClient) error {
		v, err := etcdhost.ReadValue(ctx, conn, c, key)
		if err == nil && v != nil {
			kv = &snapshot.KeyValue{Key: v.Key, Value: v.Value, CreateRevision: v.CreateRevision, ModRevision: v.ModRevision, Version: v.Version}
		}
		return err
	})
	return kv, err
}

// ask probes every member at once (a short linearizable read), then runs
// read on those that answered, in turn, until one succeeds. When none does,
// the error says why for each member: without quorum etcd serves no
// linearizable read, so no member can say what the cluster holds.
func (l *Live) ask(ctx context.Context, read func(context.Context, transport.Conn, etcdhost.EtcdClient) error) error {
	type ready struct {
		conn   transport.Conn
		client etcdhost.EtcdClient
	}
	ok := make([]*ready, len(l.members))
	errs := fanout.Each(ctx, len(l.members), len(l.members), func(ctx context.Context, i int) error {
		host := l.members[i].Host.Name
		conn, err := l.hosts.Conn(host)
		if err != nil {
			return err
		}
		f, err := l.facts(ctx, host)
		if err != nil {
			return err
		}
		c := etcdhost.ClientFor(f)
		if _, err := etcdhost.Probe(ctx, conn, c); err != nil {
			return err
		}
		ok[i] = &ready{conn, c}
		return nil
	})
	var problems []string
	for i, m := range l.members {
		err := errs[i]
		if err == nil && ok[i] != nil {
			if err = read(ctx, ok[i].conn, ok[i].client); err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			err = errors.New("not asked")
		}
		problems = append(problems, fmt.Sprintf("%s: %s", m.Host.Name, oneLine(err.Error())))
	}
	// Why no member could answer, in the words `status` uses (no quorum: 1 of 3 members answer).
	st := etcdhost.ReadStatus(ctx, l.hosts, len(l.members), l.members, func(host string) (*etcdhost.EtcdFacts, error) {
		return l.facts(ctx, host)
	})
	return &LiveUnreadable{Cluster: l.Cluster, Verdict: etcdhost.Evaluate(st, l.members, 0).Summary, Problems: problems}
}

// LiveUnreadable is a live cluster no member of which could be read.
type LiveUnreadable struct {
	Cluster string
	// Verdict is the cluster's health as `status` judges it.
	Verdict  string
	Problems []string
}

func (e *LiveUnreadable) Error() string {
	return fmt.Sprintf("cannot read the live keys of %s: %s; no member answered a read (etcd answers none without quorum; `ezrestore status %s` shows each member):\n  %s",
		e.Cluster, e.Verdict, e.Cluster, strings.Join(e.Problems, "\n  "))
}

// OpenLive connects to a cluster's etcd hosts to read its etcd (`ezrestore
// diff`): each member's unit is read when that member is first asked. close
// ends the connections.
func OpenLive(ctx context.Context, target cluster.Selector, forks int) (live *Live, cl *cluster.Cluster, close func(), err error) {
	cl, err = cluster.OpenEtcd(target)
	if err != nil {
		return nil, nil, nil, err
	}
	if forks <= 0 {
		forks = orchestrator.DefaultForks
	}
	pool := cl.Connect(ctx, cl.Inventory.EtcdHosts(), forks)
	env := &orchestrator.Env{Cluster: cl.Name, Inventory: cl.Inventory, Conns: pool, Unreachable: pool.Failed(), Forks: forks}
	var mu sync.Mutex
	gathered := map[string]*etcdhost.EtcdFacts{}
	facts := func(ctx context.Context, host string) (*etcdhost.EtcdFacts, error) {
		mu.Lock()
		f := gathered[host]
		mu.Unlock()
		if f != nil {
			return f, nil
		}
		conn, err := env.Conn(host)
		if err != nil {
			return nil, err
		}
		m, _ := memberOf(cl.Members, host)
		f, err = etcdhost.GatherEtcd(ctx, conn, m.Host)
		if err != nil {
			return nil, fmt.Errorf("reading the etcd unit: %w", err)
		}
		mu.Lock()
		gathered[host] = f
		mu.Unlock()
		return f, nil
	}
	live = &Live{Cluster: cl.Name, hosts: env, members: cl.Members, facts: facts}
	return live, cl, func() { pool.Close() }, nil
}

func memberOf(members []inventory.EtcdMember, host string) (inventory.EtcdMember, bool) {
	for _, m := range members {
		if m.Host.Name == host {
			return m, true
		}
	}
	return inventory.EtcdMember{}, false
}

// Undo is the plan's account of what the restore would undo, or why it
// could not be read.
type Undo struct {
	*diff.Result
	// Error says why the live cluster could not be compared (no quorum, no
	// member reachable); the plan goes on without the account.
	Error string `json:"error,omitempty"`
}

// planUndo compares the chosen snapshot with the live cluster, reading the
// members preflight has already read.
func planUndo(ctx context.Context, env *orchestrator.Env, cl *cluster.Cluster, snapPath string,
	facts func(host string) (*etcdhost.EtcdFacts, error)) *Undo {
	live := &Live{Cluster: cl.Name, hosts: env, members: cl.Members,
		facts: func(_ context.Context, host string) (*etcdhost.EtcdFacts, error) { return facts(host) }}
	res, err := diff.Sources(ctx, diff.SnapshotFile{Path: snapPath, Label: "the snapshot"}, live)
	if err != nil {
		var lu *LiveUnreadable
		if errors.As(err, &lu) {
			return &Undo{Error: lu.Error()}
		}
		return &Undo{Error: err.Error()}
	}
	return &Undo{Result: res}
}

// WriteText prints the account: the counts and the groups, a few names.
func (u *Undo) WriteText(w io.Writer) {
	fmt.Fprintln(w, "What this restore would undo (`ezrestore diff` lists every object):")
	if u.Error != "" {
		fmt.Fprintf(w, "  not known: %s\n", strings.ReplaceAll(u.Error, "\n", "\n  "))
		return
	}
	var b strings.Builder
	u.Result.WriteText(&b, 10)
	fmt.Fprint(w, "  "+strings.ReplaceAll(strings.TrimRight(b.String(), "\n"), "\n", "\n  ")+"\n")
}
