package orchestrator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
)

// BuildPlan expands the playbook over the inventory: for each step, the hosts
// of its groups and the exact ops each will run. Only read-only commands run
// while planning; an error here means nothing was changed.
func BuildPlan(ctx context.Context, env *Env) (*Plan, error) {
	pb := env.Playbook
	plan := &Plan{
		Cluster:   env.Cluster,
		Inventory: env.Inventory.File,
		Playbook:  pb.File,
		RunID:     env.RunID,
		Created:   time.Now().UTC(),
		Warnings:  append([]string(nil), env.Inventory.Warnings...),
	}
	for _, h := range env.Inventory.Hosts {
		if err, bad := env.Unreachable[h.Name]; bad {
			plan.Skipped = append(plan.Skipped, SkippedHost{Host: h.Name, Reason: err.Error()})
		}
	}
	for i := range pb.Steps {
		step := &pb.Steps[i]
		action, ok := env.Actions[step.Action]
		if !ok {
			return nil, fmt.Errorf("%s:%d: step %q: unknown action %q (known: %s)", pb.File, step.Line, step.Name, step.Action, strings.Join(env.Actions.Names(), ", "))
		}
		targets := HostsOf(env.Inventory, step.Hosts)
		var reachable []*inventory.Host
		var skipped []*Task
		for _, h := range targets {
			err, bad := env.Unreachable[h.Name]
			switch {
			case !bad:
				reachable = append(reachable, h)
			case step.Unreachable == "skip":
				skipped = append(skipped, &Task{Host: h.Name, Skip: "unreachable: " + err.Error()})
			default:
				return nil, fmt.Errorf("step %q needs host %s (groups %s), which cannot be reached: %v",
					step.Name, h.Name, strings.Join(h.Groups, ","), err)
			}
		}
		if len(step.Hosts) > 0 && len(targets) == 0 {
			plan.Steps = append(plan.Steps, &StepPlan{Index: i, Name: step.Name, Action: step.Action, Groups: step.Hosts,
				Notes: []string{"no hosts in " + strings.Join(step.Hosts, ", ")}})
			continue
		}
		if env.PlanGate != nil {
			if err := env.PlanGate(step, action); err != nil {
				return nil, err
			}
		}
		sp, err := action.Plan(ctx, env, step, reachable)
		if err != nil {
			return nil, fmt.Errorf("step %q: %w", step.Name, err)
		}
		sp.Index, sp.Name, sp.Action, sp.Groups = i, step.Name, step.Action, step.Hosts
		sp.Background, sp.FinishBefore = step.Background, step.FinishBefore
		sp.Tasks = append(sp.Tasks, skipped...)
		plan.Steps = append(plan.Steps, sp)
	}
	return plan, nil
}

// HostsOf returns the hosts of groups, each once, in inventory order.
func HostsOf(inv *inventory.Inventory, groups []string) []*inventory.Host {
	var out []*inventory.Host
	for _, h := range inv.Hosts {
		for _, g := range groups {
			if g == "all" || h.InGroup(g) {
				out = append(out, h)
				break
			}
		}
	}
	return out
}
