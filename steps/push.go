package steps

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// PushSnapshot sends the one snapshot to every etcd host at once, into a
// private staging dir inside the data dir (0700, file 0600). Each host
// writes the file and hashes it in the same pass and keeps it only when its
// sha256 is the bastion's.
//
// Param compress: "gzip" reads and compresses the snapshot once on the
// bastion (gzip members on every core) and streams the same bytes to every
// host, which inflates them; "none" sends the file as it is to each host;
// "auto" (the default) is gzip for snapshots of autoGzipMin and more.
// Measured (issue 12): a Kubernetes-shaped snapshot compresses 6x, so behind
// any link slower than the hosts can inflate (about 200 MiB/s per host with
// python3's zlib) gzip divides the link time by 6 per host; on the lab's
// unshaped loopback, where there is no link to save, it cost no more than the
// uncompressed push (same CPU: less SSH crypto, inflate instead).
type PushSnapshot struct{ r *Restore }

const (
	opPush = "push"
	// autoGzipMin: below this the whole push is a few round trips either way.
	autoGzipMin = 1 << 20
	// pushJoinWindow is how long the first host to reach the push waits for
	// the others before the compressed stream starts without them.
	pushJoinWindow = 2 * time.Second
)

// pushMode reads the step's compress param for a file of size bytes.
func pushMode(step *orchestrator.Step, size int64) (string, error) {
	c, err := step.Params.String("compress", "auto")
	if err != nil {
		return "", err
	}
	switch c {
	case "gzip", "none":
		return c, nil
	case "auto":
		if size >= autoGzipMin {
			return "gzip", nil
		}
		return "none", nil
	}
	return "", fmt.Errorf("param compress: %q, want auto, gzip or none", c)
}

// pushPayload is a push op's file: Local to Remote with Mode, kept only
// when its sha256 is SHA256; sent as Compress says ("gzip" or "none"), the
// gzip stream shared by Together hosts at once.
type pushPayload struct {
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	Mode     uint32 `json:"mode"`
	SHA256   string `json:"sha256"`
	Compress string `json:"compress"`
	Together int    `json:"together"`
}

func (p *PushSnapshot) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	mode, err := pushMode(step, p.r.Snapshot.Size)
	if err != nil {
		return nil, err
	}
	// The hosts that reach the push at once: those the run works on together.
	together := len(hosts)
	if env.Forks > 0 {
		together = min(together, env.Forks)
	}
	how := "gzip stream, compressed once for all hosts"
	if mode == "none" {
		how = "uncompressed"
	}
	sp := &orchestrator.StepPlan{Parallel: true}
	sumText := p.r.Snapshot.SHA256
	if p.r.Snapshot.Member != "" {
		sumText = "the copy's (known once the member-copy step has copied it from " + p.r.Snapshot.Member + ")"
	}
	for _, h := range hosts {
		f, err := p.r.Etcd(h.Name)
		if err != nil {
			return nil, err
		}
		st := etcdhost.StageFor(p.r.Token, f)
		q := transport.Quote
		d := f.Config.DataDir
		mk := fmt.Sprintf("set -e\n[ -d %[1]s ] || install -d -m 0700 %[1]s\ninstall -d -m 0700 %[2]s %[3]s", q(d), q(d+"/.ezrestore"), q(st.Dir))
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{
			{Kind: orchestrator.OpRun, Desc: "make the private staging dir", Cmd: mk, Changes: true},
			{Kind: opPush, Changes: true,
				Desc:    fmt.Sprintf("%s -> %s (mode 0600, %s); the host hashes it as it writes and keeps it only if sha256 is %s", p.r.Snapshot.Path, st.Snapshot, how, sumText),
				Payload: pushPayload{Local: p.r.Snapshot.Path, Remote: st.Snapshot, Mode: 0o600, SHA256: p.r.Snapshot.SHA256, Compress: mode, Together: together}},
		}})
	}
	return sp, nil
}

// Exec pushes to one host. It runs on a context Ctrl-C does not cancel, as
// the runner's own ops do: the run stops between steps, never mid-file.
func (p *PushSnapshot) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, conn transport.Conn) (orchestrator.OpResult, error) {
	ctx = context.WithoutCancel(ctx)
	var progress func(int64)
	if env.Progress != nil {
		progress = env.Progress(t.Host)
	}
	pp, err := orchestrator.PayloadOf[pushPayload](op)
	if err != nil {
		return orchestrator.OpResult{}, err
	}
	mode := os.FileMode(pp.Mode)
	// A member's db is copied by an earlier step of the run: its sha256 is
	// known only from then on.
	if pp.SHA256 == "" {
		pp.SHA256 = p.r.Snapshot.SHA256
	}
	if pp.SHA256 == "" {
		return orchestrator.OpResult{}, fmt.Errorf("no sha256 to check %s against: the member-copy step did not copy it in this run", pp.Local)
	}
	if pp.Compress != "gzip" {
		r, err := transport.Push(ctx, conn, pp.Local, pp.Remote, mode, pp.SHA256, progress)
		res := orchestrator.OpResult{Duration: r.Duration}
		if err != nil {
			return res, err
		}
		res.Message = transport.Moved(r.Size, r.Duration) + ", sha256 matches"
		return res, nil
	}
	r := p.r.pushFanout(pp.Local, mode, pp.SHA256, pp.Together).Join(ctx, conn, pp.Remote, progress)
	res := orchestrator.OpResult{Duration: r.Duration}
	if r.Err != nil {
		return res, r.Err
	}
	res.Message = fmt.Sprintf("%s, %s on the wire (gzip), sha256 matches", transport.Moved(r.Raw, r.Duration), transport.Bytes(r.Wire))
	return res, nil
}
