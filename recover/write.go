package recover

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ezrestore/ezrestore/orchestrator"
)

// batchSize is how many objects one transaction writes: under etcd's
// default --max-txn-ops (128), so a default member takes every batch.
const batchSize = 100

// write writes the plan's objects in batches (see batches: a namespace
// first, with what the cluster would make in it; each owner with what it
// owns), a transaction each: each put happens only if its key is still as
// the plan saw it (absent, or for --replace at the mod revision the diff
// was taken from), and a batch is all or nothing.
func (s *Session) write(ctx context.Context, rec *orchestrator.Record) (int, error) {
	var todo []*Item
	for _, it := range s.Plan.Items {
		if it.Action == Create || it.Action == Replace {
			todo = append(todo, it)
		}
	}
	written := 0
	for _, batch := range batches(todo, batchSize) {
		cmps := make([]clientv3.Cmp, len(batch))
		puts := make([]clientv3.Op, len(batch))
		for i, it := range batch {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(it.Key), "=", it.LiveModRevision)
			puts[i] = clientv3.OpPut(it.Key, string(it.value))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
		if err != nil {
			return written, fmt.Errorf("writing %s and %d more through etcd member %s: %w", batch[0].Object, len(batch)-1, s.cli.Host, err)
		}
		if !resp.Succeeded {
			return written, s.changedSince(ctx, batch)
		}
		var names []string
		for _, it := range batch {
			names = append(names, it.Object)
			rec.Event(orchestrator.Event{Step: "write", Host: s.cli.Host, Status: string(it.Action), Message: it.Object + " " + it.Key})
		}
		written += len(batch)
		fmt.Fprintf(s.req.Out, "  wrote %d at revision %d: %s\n", len(batch), resp.Header.Revision, abbreviate(names, 4))
	}
	return written, nil
}

// changedSince names the objects of a refused batch that changed after
// the plan (created by someone else, or changed under --replace).
func (s *Session) changedSince(ctx context.Context, batch []*Item) error {
	live, err := s.liveRevisions(ctx, batch)
	if err != nil {
		return fmt.Errorf("a batch was refused by etcd (an object changed since the plan) and the cluster could not be read again: %w", err)
	}
	var changed []string
	for _, it := range batch {
		if now, ok := live[it.Key]; ok && now != it.LiveModRevision || !ok && it.LiveModRevision != 0 {
			changed = append(changed, fmt.Sprintf("%s (mod revision %d at the plan, %d now)", it.Object, it.LiveModRevision, now))
		}
	}
	return fmt.Errorf("changed in the cluster since the plan, so this batch of %d (from %s) was not written: %s", len(batch), batch[0].Object, strings.Join(changed, ", "))
}

// verify reads every written key back: each object is there with the
// snapshot's uid (controllers may have updated it since, as they do).
func (s *Session) verify(ctx context.Context) error {
	var items []*Item
	for _, it := range s.Plan.Items {
		if it.Action == Create || it.Action == Replace {
			items = append(items, it)
		}
	}
	parents := map[string]bool{}
	for _, it := range items {
		parents[it.Key[:strings.LastIndex(it.Key, "/")+1]] = true
	}
	now := map[string]*mvccpb.KeyValue{}
	for parent := range parents {
		resp, err := s.cli.Get(ctx, parent, clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("reading back %s*: %w", parent, err)
		}
		for _, kv := range resp.Kvs {
			now[string(kv.Key)] = kv
		}
	}
	var differ []string
	for _, it := range items {
		kv, ok := now[it.Key]
		switch {
		case !ok:
			differ = append(differ, it.Object+" is gone")
		case it.UID != "":
			if o, err := s.dec.Decode(it.Key, kv.Value, kv.ModRevision); err == nil && o.UID != it.UID {
				differ = append(differ, fmt.Sprintf("%s has uid %s, not %s", it.Object, o.UID, it.UID))
			}
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("written, but when read back: %s (the garbage collector or a controller acted on them)", strings.Join(differ, ", "))
	}
	return nil
}

// abbreviate lists up to n names and how many more.
func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
