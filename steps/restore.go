package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// EtcdRestore restores the pushed snapshot on each etcd host into its staging
// dir, as that host's own member of one new cluster: its own --name and peer
// URL, the same --initial-cluster and token everywhere. Restoring once and
// copying the result would give every host the same member ID (split brain).
type EtcdRestore struct{ r *Restore }

// BumpRevision is how far revisions jump so Kubernetes watchers relist.
const BumpRevision = 1000000000

// InitialCluster is the --initial-cluster value: every member, in inventory order.
func InitialCluster(ms []inventory.EtcdMember) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.Name + "=" + m.PeerURL
	}
	return strings.Join(parts, ",")
}

func (e *EtcdRestore) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	sp := &orchestrator.StepPlan{Parallel: true}
	cluster := InitialCluster(e.r.Members)
	for _, h := range hosts {
		f, err := e.r.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		m, ok := e.r.Member(h.Name)
		if !ok {
			return nil, fmt.Errorf("host %s is not an etcd member of the inventory", h.Name)
		}
		tool, err := f.RestoreTool()
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		st := etcdhost.StageFor(e.r.Token, f)
		q := transport.Quote
		args := []string{"snapshot", "restore", st.Snapshot,
			"--name", m.Name,
			"--initial-cluster", cluster,
			"--initial-cluster-token", e.r.Token,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--data-dir", st.Data}
		if st.Wal != "" {
			args = append(args, "--wal-dir", st.Wal)
		}
		if !e.r.Snapshot.HasTrailer {
			args = append(args, "--skip-hash-check")
		}
		if e.r.BumpRevision && f.BumpRevision {
			args = append(args, "--bump-revision", fmt.Sprint(BumpRevision), "--mark-compacted")
		}
		// Output of an earlier try of this step is ours to replace; nothing else is touched.
		clean := "rm -rf -- " + q(st.Data)
		if st.Wal != "" {
			clean += " " + q(st.Wal)
		}
		cmd := "set -e\n" + clean + "\n" + tool + " " + transport.QuoteAll(args...) + "\nchmod 0700 " + q(st.Data)
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{{
			Kind: orchestrator.OpRun, Desc: fmt.Sprintf("restore as member %s with %s", m.Name, f.ToolLabel()), Cmd: cmd, Changes: true,
		}}})
	}
	return sp, nil
}
