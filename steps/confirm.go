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
// --yes was given. With no terminal and no --yes it refuses.
type Confirm struct{ r *Restore }

const opConfirm = "confirm"

func (c *Confirm) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	desc := "ask the operator to type yes"
	if c.r.Yes {
		desc = "confirmed in advance by --yes"
	}
	return &orchestrator.StepPlan{ReadOnly: true, Tasks: []*orchestrator.Task{{Ops: []*orchestrator.Op{{Kind: opConfirm, Desc: desc}}}}}, nil
}

func (c *Confirm) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, _ transport.Conn) (orchestrator.OpResult, error) {
	if c.r.Yes {
		return orchestrator.OpResult{Message: "--yes given"}, nil
	}
	if c.r.Confirm == nil {
		return orchestrator.OpResult{}, fmt.Errorf("no terminal to ask on: run `ezrestore plan` to review, then restore with --yes")
	}
	var hosts []string
	for _, m := range c.r.Members {
		hosts = append(hosts, m.Host.Name)
	}
	what := c.r.Snapshot.Path
	if m := c.r.Snapshot.Member; m != "" {
		what = "the db of member " + m + " (copied to " + what + ")"
	}
	summary := fmt.Sprintf("This stops Kubernetes and etcd, sets aside the etcd data on %s and restores %s (revision %d) everywhere.",
		strings.Join(hosts, ", "), what, c.r.Snapshot.Revision)
	ok, err := c.r.Confirm(summary)
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	if !ok {
		return orchestrator.OpResult{}, fmt.Errorf("not confirmed: nothing was changed")
	}
	return orchestrator.OpResult{Message: "confirmed"}, nil
}
