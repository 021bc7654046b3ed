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

// EtcdCleanup removes this run's staged copies once the restored cluster is
// healthy: <data-dir>/.ezrestore/<token>/ (the pushed snapshot and what is
// left of the restore's output) and, with --wal-dir, <wal-dir>.ezrestore-<token>
// if the swap did not take it. Nothing else: not the set-aside data, not
// another run's staging. The snapshot stays on the bastion. Skipping the step
// (removing it from the playbook) only keeps the copies; no later step needs them.
type EtcdCleanup struct{ r *Restore }

func (c *EtcdCleanup) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	if err := etcdhost.ValidToken(c.r.Token); err != nil {
		return nil, err
	}
	sp := &orchestrator.StepPlan{Parallel: true}
	for _, h := range hosts {
		f, err := c.r.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		st := etcdhost.StageFor(c.r.Token, f)
		cmd := removeStagedScript(st, etcdhost.StagingRoot(f))
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{{
			Kind: orchestrator.OpRun, Desc: "remove this run's staged copies", Cmd: cmd, Changes: true,
		}}})
	}
	sp.Notes = append(sp.Notes, fmt.Sprintf("only this run's staging (token %s) is removed; the snapshot stays on the bastion at %s", c.r.Token, c.r.Snapshot.Path))
	return sp, nil
}

// removeStagedScript removes the run's staging dir (and staged WAL), saying
// what it freed, then the staging root if that left it empty.
func removeStagedScript(st etcdhost.Stage, root string) string {
	q := transport.Quote
	var b strings.Builder
	b.WriteString(`rmstaged() { if [ -d "$1" ] && [ ! -L "$1" ]; then k=$(du -sk -- "$1" | cut -f1); rm -rf -- "$1" && printf 'removed %s (%s KiB)\n' "$1" "$k"; else printf 'nothing staged at %s\n' "$1"; fi; }` + "\n")
	fmt.Fprintf(&b, "rmstaged %s", q(st.Dir))
	if st.MemberInPlace {
		fmt.Fprintf(&b, " && rmstaged %s", q(st.Data))
	}
	if st.Wal != "" {
		fmt.Fprintf(&b, " && rmstaged %s", q(st.Wal))
	}
	fmt.Fprintf(&b, " && { rmdir -- %s 2>/dev/null || true; }", q(root))
	return b.String()
}

// StagedText says where this run's staged copies are kept, for a run that
// stopped at step index reached: empty when it stopped before the push.
func StagedText(env *orchestrator.Env, r *Restore, reached int) string {
	push := orchestrator.StepOf[*PushSnapshot](env)
	if push < 0 || reached < push {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nThe staged copies are kept (a resumed run uses them; `ezrestore prune` removes them later):\n")
	for _, m := range r.Members {
		f := r.Host(m.Host.Name).Etcd
		if f == nil {
			continue
		}
		st := etcdhost.StageFor(r.Token, f)
		fmt.Fprintf(&b, "  %s: %s", m.Host.Name, st.Dir)
		if st.MemberInPlace {
			fmt.Fprintf(&b, ", %s (if the swap did not take it)", st.Data)
		}
		if st.Wal != "" {
			fmt.Fprintf(&b, " and %s (if the swap did not take it)", st.Wal)
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
