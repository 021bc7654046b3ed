package orchestrator

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ezrestore/ezrestore/orchestrator/transport"
)

// uploadOp copies op.Local to op.Remote on the task's host and, when the op
// carries a sha256, checks what the host holds against it.
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
	if err := conn.Upload(ctx, op.Local, op.Remote, mode, progress); err != nil {
		return OpResult{Duration: time.Since(t0)}, err
	}
	res := OpResult{Duration: time.Since(t0)}
	var size int64
	if st, err := os.Stat(op.Local); err == nil {
		size = st.Size()
	}
	res.Message = transport.Moved(size, res.Duration)
	if op.SHA256 != "" {
		sum, err := transport.RemoteSha256(ctx, conn, op.Remote)
		res.Duration = time.Since(t0)
		if err != nil {
			return res, fmt.Errorf("checking %s after upload: %w", op.Remote, err)
		}
		if sum != op.SHA256 {
			return res, fmt.Errorf("%s arrived damaged: sha256 %s on the host, %s on the bastion", op.Remote, sum, op.SHA256)
		}
		res.Message = transport.Moved(size, res.Duration) + ", sha256 matches"
	}
	return res, nil
}
