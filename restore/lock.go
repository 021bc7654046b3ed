package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/runlock"
	"github.com/ezrestore/ezrestore/transport"
)

// Lock is a run's lock on one cluster (runlock.Run): the bastion file in the
// cluster dir, then the etcd hosts'. Restore, rollback and backup take it.
type Lock struct {
	*runlock.Run
	out io.Writer
}

// LockOptions say who takes a lock and whether a stale one may be taken over.
type LockOptions struct {
	// Command is the ezrestore command holding the lock (restore, rollback).
	Command string
	// Break takes over a lock that looks stale (--break-lock).
	Break bool
	// Out receives what is said aloud (a stale lock taken over).
	Out io.Writer
}

// LockPath is where the bastion lock of a cluster dir lives.
func LockPath(clusterDir string) string { return filepath.Join(clusterDir, runlock.FileName) }

// LockCluster takes the bastion lock of the cluster sel names. When another
// run holds it, the error is a *runlock.HeldError naming the holder.
func LockCluster(sel cluster.Selector, opts LockOptions) (*Lock, error) {
	cl, err := cluster.Open(sel)
	if err != nil {
		return nil, err
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	r, err := runlock.AcquireRun(LockPath(cl.Dir), opts.Command, "cluster "+cl.Name, opts.Break, opts.Out)
	if err != nil {
		return nil, err
	}
	return &Lock{Run: r, out: opts.Out}, nil
}

// LockHeld is a warning when another run holds the cluster's bastion lock
// (`plan` takes no lock but says so), or "".
func LockHeld(sel cluster.Selector) string {
	cl, err := cluster.Open(sel)
	if err != nil {
		return ""
	}
	if h := runlock.Peek(LockPath(cl.Dir)); h != nil {
		return h.Error()
	}
	return ""
}

// LockHosts takes the lock on every host of hosts that has a connection in
// env; an unreachable one is said aloud (the run itself refuses or skips it).
func (l *Lock) LockHosts(ctx context.Context, env *orchestrator.Env, hosts []*inventory.Host) error {
	var conns []transport.Conn
	for _, h := range hosts {
		c, err := env.Conn(h.Name)
		if err != nil {
			fmt.Fprintf(l.out, "Run lock not taken on %s: %v\n", h.Name, err)
			continue
		}
		conns = append(conns, c)
	}
	return l.Run.LockHosts(ctx, conns, env.Forks)
}

// Record writes the lock (lock.json) and every take-over into a run record.
func (l *Lock) Record(rec *orchestrator.Record) error {
	if l == nil || rec == nil {
		return nil
	}
	doc := struct {
		Bastion runlock.Holder `json:"bastion"`
		File    string         `json:"file"`
		Hosts   []string       `json:"hosts,omitempty"`
		Broke   []string       `json:"broke,omitempty"`
	}{Bastion: l.File.Holder, File: l.File.Path, Broke: l.Broke}
	if l.Hosts != nil {
		doc.Hosts = l.Hosts.Taken()
	}
	for _, b := range l.Broke {
		rec.Event(orchestrator.Event{Step: "run lock", Status: "lock-broken", Message: b})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return rec.WriteFile("lock.json", b)
}
