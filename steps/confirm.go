package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// Confirm asks the operator to type "yes" before the first change, unless
// --yes was given. With no terminal and no --yes it refuses. Restore,
// rollback and prune use it, each telling it through Confirmable what a yes
// lets happen.
type Confirm struct{ s Confirmable }

// Confirmable is a run's state as the confirm step needs it.
type Confirmable interface{ Confirmation() Confirmation }

// Confirmation is what the confirm step asks and what it says when it
// cannot or may not go on.
type Confirmation struct {
	// Yes: confirmed in advance (--yes).
	Yes bool
	// Ask asks the operator to type yes; nil means there is no terminal.
	Ask func(summary string) (bool, error)
	// Summary says what a yes lets happen; read when the step runs.
	Summary string
	// NoTerminal is what to do without a terminal and without --yes.
	NoTerminal string
	// Unchanged is what holds after a no ("nothing was changed").
	Unchanged string
}

const opConfirm = "confirm"

func (c *Confirm) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	desc := "ask the operator to type yes"
	if c.s.Confirmation().Yes {
		desc = "confirmed in advance by --yes"
	}
	return &orchestrator.StepPlan{ReadOnly: true, Tasks: []*orchestrator.Task{{Ops: []*orchestrator.Op{{Kind: opConfirm, Desc: desc}}}}}, nil
}

func (c *Confirm) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, _ transport.Conn) (orchestrator.OpResult, error) {
	q := c.s.Confirmation()
	if q.Yes {
		return orchestrator.OpResult{Message: "--yes given"}, nil
	}
	if q.Ask == nil {
		return orchestrator.OpResult{}, fmt.Errorf("no terminal to ask on: %s", q.NoTerminal)
	}
	ok, err := q.Ask(q.Summary)
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	if !ok {
		return orchestrator.OpResult{}, fmt.Errorf("not confirmed: %s", q.Unchanged)
	}
	return orchestrator.OpResult{Message: "confirmed"}, nil
}

// Confirmation is what a restore asks before it changes anything.
func (r *Restore) Confirmation() Confirmation {
	var hosts []string
	for _, m := range r.Members {
		hosts = append(hosts, m.Host.Name)
	}
	what := r.Snapshot.Path
	if m := r.Snapshot.Member; m != "" {
		what = "the db of member " + m + " (copied to " + what + ")"
	}
	return Confirmation{Yes: r.Yes, Ask: r.Confirm,
		Summary: fmt.Sprintf("This stops Kubernetes and etcd, sets aside the etcd data on %s and restores %s (revision %d) everywhere.",
			strings.Join(hosts, ", "), what, r.Snapshot.Revision),
		NoTerminal: "run `ezrestore plan` to review, then restore with --yes",
		Unchanged:  "nothing was changed"}
}

// Confirmation is what a rollback asks before it changes anything.
func (rb *Rollback) Confirmation() Confirmation {
	return Confirmation{Yes: rb.Yes, Ask: rb.Confirm,
		Summary: fmt.Sprintf("This stops Kubernetes and etcd, moves the restored etcd data aside (*.restored-%s) and puts back the data run %s set aside on %s, then starts etcd and Kubernetes.",
			rb.Record.Token, rb.Record.RunID, hostNames(rb.Record.Hosts)),
		NoTerminal: "review the plan above, then run rollback with --yes",
		Unchanged:  "nothing was changed"}
}
