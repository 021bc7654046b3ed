package orchestrator

import (
	"context"
	"os"
	"time"

	"github.com/ezrestore/ezrestore/orchestrator/transport"
)

// uploadOp copies op.Local to op.Remote on the task's host. When the op
// carries a sha256 the host checks what it wrote against it in the same pass
// (transport.Push) and keeps the file only when it matches.
func uploadOp(ctx context.Context, env *Env, conn transport.Conn, op *Op) (OpResult, error) {
	t0 := time.Now()
	var progress func(int64)
	if env.Progress != nil {
		progress = env.Progress(conn.Host().Name)
	}
	mode := os.FileMode(op.Mode)
	if mode == 0 {
		mode = 0o600
	}
	if op.SHA256 != "" {
		p, err := transport.Push(ctx, conn, op.Local, op.Remote, mode, op.SHA256, progress)
		res := OpResult{Duration: p.Duration}
		if err != nil {
			return res, err
		}
		res.Message = transport.Moved(p.Size, p.Duration) + ", sha256 matches"
		return res, nil
	}
	if err := conn.Upload(ctx, op.Local, op.Remote, mode, progress); err != nil {
		return OpResult{Duration: time.Since(t0)}, err
	}
	res := OpResult{Duration: time.Since(t0)}
	if st, err := os.Stat(op.Local); err == nil {
		res.Message = transport.Moved(st.Size(), res.Duration)
	}
	return res, nil
}
