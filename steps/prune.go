package steps

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// Prune is what the prune's steps share: per etcd host, the leftovers of
// earlier runs chosen for removal (chosen before planning, from what the
// hosts hold and how the recorded runs ended: restore.Prune), the
// operator's choices, and what each host removed.
type Prune struct {
	// Remove lists, per host, what goes and the etcd unit it was found beside.
	Remove map[string]PruneHost
	// Summary says what a yes deletes.
	Summary string
	Yes     bool
	// Confirm asks the operator to type yes; nil means there is no terminal.
	Confirm func(summary string) (bool, error)

	mu      sync.Mutex
	removed map[string][]PruneRemoved
}

// PruneHost is what prune removes on one host.
type PruneHost struct {
	Etcd      *etcdhost.EtcdFacts
	Leftovers []etcdhost.Leftover
}

// PruneRemoved is one dir that prune removed or failed to.
type PruneRemoved struct {
	Host  string `json:"host"`
	Path  string `json:"path"`
	Kind  string `json:"kind"`
	Token string `json:"token"`
	Bytes int64  `json:"bytes"`
	// Result is "removed", "absent" (gone before prune came) or "failed: ...".
	Result string `json:"result"`
}

// PruneActions is every action the prune playbook may use.
func PruneActions(p *Prune) orchestrator.Registry {
	return orchestrator.Registry{
		"confirm":      &Confirm{p},
		"prune-remove": &PruneRemove{p},
	}
}

// Confirmation is what a prune asks before it deletes anything.
func (p *Prune) Confirmation() Confirmation {
	return Confirmation{Yes: p.Yes, Ask: p.Confirm, Summary: p.Summary,
		NoTerminal: "review the list above, then run prune again with --yes; nothing was removed",
		Unchanged:  "nothing was removed"}
}

// Removed is what the hosts removed or failed to, in the order of hosts;
// ran is false when no host was asked to (the run stopped before).
func (p *Prune) Removed(hosts []string) (out []PruneRemoved, ran bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range hosts {
		out = append(out, p.removed[h]...)
	}
	return out, p.removed != nil
}

// PruneRemove deletes, on each host and in one round trip, the dirs chosen
// for it. Every path is checked again, at plan time, against the names
// ezrestore makes beside that host's etcd data; the script removes only
// directories (not a link) and says per path what it did.
type PruneRemove struct{ p *Prune }

const opPruneRemove = "prune-remove"

func (a *PruneRemove) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	sp := &orchestrator.StepPlan{Parallel: true}
	for _, h := range hosts {
		ph := a.p.Remove[h.Name]
		if len(ph.Leftovers) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString(`rc=0; rmx() { if [ -d "$1" ] && [ ! -L "$1" ]; then if rm -rf -- "$1"; then printf 'removed\t%s\n' "$1"; else printf 'failed\t%s\n' "$1"; rc=1; fi; else printf 'absent\t%s\n' "$1"; fi; }` + "\n")
		var paths []string
		var bytes int64
		for _, l := range ph.Leftovers {
			kind, tok, ok := etcdhost.ClassifyLeftover(l.Path, ph.Etcd)
			if !ok || kind != l.Kind || tok != l.Token {
				return nil, &transport.HostError{Host: h.Name, Err: fmt.Errorf("refusing to remove %s: not a name ezrestore makes beside etcd's data (%s)", l.Path, ph.Etcd.Config.DataDir)}
			}
			fmt.Fprintf(&b, "rmx %s\n", transport.Quote(l.Path))
			paths = append(paths, l.Path)
			bytes += l.Bytes
		}
		b.WriteString("exit $rc\n")
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{{
			Kind: opPruneRemove, Cmd: b.String(), Changes: true,
			Desc: fmt.Sprintf("remove %s (%s)", strings.Join(paths, ", "), bytesize.Human(bytes)),
		}}})
	}
	return sp, nil
}

// Exec runs the host's removal and keeps, per path, what happened. It runs
// to its end once started, as the runner's own commands do.
func (a *PruneRemove) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, conn transport.Conn) (orchestrator.OpResult, error) {
	r, err := conn.Run(context.WithoutCancel(ctx), op.Cmd)
	res := orchestrator.OpResult{Stdout: string(r.Stdout), Stderr: string(r.Stderr), ExitCode: r.ExitCode, Duration: r.Duration}
	got := map[string]string{}
	for _, line := range strings.Split(res.Stdout, "\n") {
		if st, p, ok := strings.Cut(line, "\t"); ok {
			got[p] = st
		}
	}
	var out []PruneRemoved
	n := 0
	for _, l := range a.p.Remove[t.Host].Leftovers {
		rs := got[l.Path]
		switch rs {
		case "":
			rs = "failed: no answer"
			if err != nil {
				rs = "failed: " + err.Error()
			}
		case "failed":
			rs = "failed: " + strings.TrimSpace(res.Stderr)
		case "removed":
			n++
		}
		out = append(out, PruneRemoved{Host: t.Host, Path: l.Path, Kind: l.Kind, Token: l.Token, Bytes: l.Bytes, Result: rs})
	}
	a.p.mu.Lock()
	if a.p.removed == nil {
		a.p.removed = map[string][]PruneRemoved{}
	}
	a.p.removed[t.Host] = out
	a.p.mu.Unlock()
	res.Message = fmt.Sprintf("removed %d of %d", n, len(out))
	switch {
	case err != nil:
		return res, err
	case r.ExitCode != 0:
		return res, fmt.Errorf("some removals failed (exit %d): %s", r.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res, nil
}
