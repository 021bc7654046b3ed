package restore

// What a restore would undo: the snapshot against the live cluster's etcd,
// by keys and revisions (package diff), read with a client of one member
// reached through its host's SSH connection (package etcdclient, with the
// certificates the member's unit names). `ezrestore diff` prints it; the
// plan shows its summary.

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/diff"
	"github.com/ezrestore/ezrestore/etcdclient"
	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/steps"
)

// LiveUnreadable is a live cluster no member of which answered a read.
type LiveUnreadable struct {
	Cluster string
	// Verdict is the cluster's health as `status` judges it (no quorum: ...).
	Verdict  string
	Problems []string
}

func (e *LiveUnreadable) Error() string {
	return fmt.Sprintf("cannot read the live keys of %s: %s; no member answered a read (etcd answers none without quorum; `ezrestore status %s` shows each member):\n  %s",
		e.Cluster, e.Verdict, e.Cluster, strings.Join(e.Problems, "\n  "))
}

// dialLive connects to every member at once and keeps the first, in the
// inventory's order, that answered a linearizable read; the others are
// closed. When none answers, status says why in the words `status` uses.
func dialLive(ctx context.Context, name string, hosts etcdhost.Hosts, members []inventory.EtcdMember, status func() etcdhost.Verdict) (*etcdclient.Client, error) {
	clients := make([]*etcdclient.Client, len(members))
	errs := fanout.Each(ctx, len(members), len(members), func(ctx context.Context, i int) error {
		conn, err := hosts.Conn(members[i].Host.Name)
		if err != nil {
			return fmt.Errorf("host %s: %w", members[i].Host.Name, err)
		}
		clients[i], err = etcdclient.Dial(ctx, conn)
		return err
	})
	var chosen *etcdclient.Client
	var problems []string
	for i, c := range clients {
		switch {
		case c != nil && chosen == nil:
			chosen = c
		case c != nil:
			c.Close()
		case errs[i] != nil:
			problems = append(problems, oneLine(errs[i].Error()))
		}
	}
	if chosen != nil {
		return chosen, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, &LiveUnreadable{Cluster: name, Verdict: status().Summary, Problems: problems}
}

// OpenLive connects to a cluster's etcd hosts and to one member's etcd
// through them (`ezrestore diff`). close ends the client and the connections.
func OpenLive(ctx context.Context, target cluster.Selector, forks int) (live diff.Source, cl *cluster.Cluster, close func(), err error) {
	cl, err = cluster.OpenEtcd(target)
	if err != nil {
		return nil, nil, nil, err
	}
	if forks <= 0 {
		forks = orchestrator.DefaultForks
	}
	pool := cl.Connect(ctx, cl.Inventory.EtcdHosts(), forks)
	env := &orchestrator.Env{Cluster: cl.Name, Inventory: cl.Inventory, Conns: pool, Unreachable: pool.Failed(), Forks: forks}
	cli, err := dialLive(ctx, cl.Name, env, cl.Members, func() etcdhost.Verdict {
		return etcdhost.Evaluate(etcdhost.ClusterStatus(ctx, env, forks, cl.Members), cl.Members, 0)
	})
	if err != nil {
		pool.Close()
		return nil, cl, nil, err
	}
	return diff.Etcd{KV: cli, Label: "live cluster " + cl.Name}, cl, func() { cli.Close(); pool.Close() }, nil
}

// Undo is the plan's account of what the restore would undo, or why it
// could not be read.
type Undo struct {
	*diff.Result
	// Error says why the live cluster could not be compared (no quorum, no
	// member reachable); the plan goes on without the account.
	Error string `json:"error,omitempty"`
}

// startUndo compares the chosen snapshot with the live cluster through the
// plan's connections, beside the planning (the live read and the snapshot's
// keys take seconds on a big cluster); the func it returns waits for the
// account. It reads the snapshot once the restore's check of it is done.
func startUndo(ctx context.Context, env *orchestrator.Env, cl *cluster.Cluster, r *steps.Restore) func() *Undo {
	done := make(chan *Undo, 1)
	go func() {
		if err := r.SnapshotReady(); err != nil {
			done <- &Undo{Error: "the snapshot is not usable: " + err.Error()}
			return
		}
		cli, err := dialLive(ctx, cl.Name, env, cl.Members, func() etcdhost.Verdict {
			return etcdhost.Evaluate(etcdhost.ClusterStatus(ctx, env, env.Forks, cl.Members), cl.Members, 0)
		})
		if err != nil {
			done <- &Undo{Error: err.Error()}
			return
		}
		defer cli.Close()
		res, err := diff.Sources(ctx, diff.SnapshotFile{Path: r.Snapshot.Path, Label: "the snapshot"}, diff.Etcd{KV: cli, Label: "live cluster " + cl.Name})
		if err != nil {
			done <- &Undo{Error: err.Error()}
			return
		}
		done <- &Undo{Result: res}
	}()
	return func() *Undo { return <-done }
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
