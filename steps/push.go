package steps

import (
	"context"
	"fmt"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/orchestrator/transport"
)

// PushSnapshot sends the one snapshot to every etcd host at once, into a
// private staging dir inside the data dir (0700, file 0600), and checks its
// sha256 there against the bastion's.
type PushSnapshot struct{ r *Restore }

func (p *PushSnapshot) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	sp := &orchestrator.StepPlan{Parallel: true}
	for _, h := range hosts {
		f, err := p.r.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		st := stageFor(p.r.Token, f)
		q := transport.Quote
		d := f.Config.DataDir
		mk := fmt.Sprintf("set -e\n[ -d %[1]s ] || install -d -m 0700 %[1]s\ninstall -d -m 0700 %[2]s %[3]s", q(d), q(d+"/.ezrestore"), q(st.Dir))
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{
			{Kind: orchestrator.OpRun, Desc: "make the private staging dir", Cmd: mk, Changes: true},
			{Kind: orchestrator.OpUpload, Local: p.r.Snapshot.Path, Remote: st.Snapshot, Mode: 0o600, SHA256: p.r.Snapshot.SHA256, Changes: true},
		}})
	}
	return sp, nil
}
