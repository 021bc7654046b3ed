package steps

import (
	"context"
	"fmt"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
)

// EtcdSpace is the read-only step that accounts, per etcd host, for what
// earlier runs left (set-aside data, staged copies) and the room left on the
// data, staging and WAL filesystems. It plans nothing to run: it reports.
type EtcdSpace struct{ r *Restore }

func (e *EtcdSpace) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	tasks := make([]*orchestrator.Task, len(hosts))
	notes := make([]string, len(hosts))
	fanout.Each(ctx, len(hosts), env.Forks, func(ctx context.Context, i int) error {
		h := hosts[i]
		tasks[i] = &orchestrator.Task{Host: h.Name}
		f, err := e.r.Etcd(h.Name)
		if err != nil {
			notes[i] = err.Error()
			return nil
		}
		conn, err := env.Conn(h.Name)
		if err != nil {
			notes[i] = fmt.Sprintf("%s: %v", h.Name, err)
			return nil
		}
		hs, err := etcdhost.SpaceOf(ctx, conn, f)
		if err != nil {
			notes[i] = fmt.Sprintf("%s: could not measure space: %v", h.Name, err)
			return nil
		}
		tasks[i].Checks = etcdhost.AccountLines(hs, e.r.Token)
		return nil
	})
	sp := &orchestrator.StepPlan{ReadOnly: true, DoneAtPlan: true, Parallel: true, Tasks: tasks}
	for _, n := range notes {
		if n != "" {
			sp.Notes = append(sp.Notes, n)
		}
	}
	return sp, nil
}
