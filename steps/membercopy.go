package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/snapshot"
	"github.com/ezrestore/ezrestore/transport"
)

// MemberCopy copies the chosen member's db (--snapshot member:HOST or
// member:freshest) to the bastion, where the push takes it from. etcd is
// stopped on that host first (a running etcd's db is never read nor
// copied: it holds it locked and changes it); the member has no quorum to
// serve (the plan refused otherwise), so stopping it before the other
// services loses nothing. The copy is checked by sha256 on the host and on
// the bastion and filed in the backup dir with a sidecar. With a snapshot
// file as the source the step has nothing to do.
//
// It comes before the push in the playbook: the push, in the background
// beside the stops, then pushes a file that is already whole.
type MemberCopy struct{ r *Restore }

const opMemberCopy = "member-copy"

func (c *MemberCopy) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	src := c.r.Snapshot
	if src.Member == "" {
		return &orchestrator.StepPlan{ReadOnly: true, Notes: []string{"the snapshot is a file on the bastion: nothing to copy"}}, nil
	}
	var host *inventory.Host
	for _, h := range hosts {
		if h.Name == src.Member {
			host = h
		}
	}
	if host == nil {
		return nil, fmt.Errorf("the member source %s is not among this step's hosts: the step must target the etcd group", src.Member)
	}
	f, err := c.r.Etcd(host.Name)
	if err != nil {
		return nil, err
	}
	db := f.Config.DataDir + "/member/snap/db"
	stop := "systemctl stop etcd.service\nif systemctl is-active --quiet etcd.service; then echo 'etcd.service is still active after systemctl stop' >&2; exit 1; fi"
	running := "it does not run now; stopped again in case it started since"
	if f.Active == "active" || f.Active == "activating" {
		running = "it runs now, without a quorum"
	}
	sp := &orchestrator.StepPlan{Notes: []string{
		"before the push: the push (in the background beside the stops that follow) starts once the copy is filed, and sends it",
		"writes still in the member's WAL but not yet in its db are not in the copy",
		"restored with --skip-hash-check: a db copied from member/snap/db has no sha256 trailer",
	}}
	sp.Tasks = []*orchestrator.Task{{Host: host.Name, Ops: []*orchestrator.Op{
		{Kind: orchestrator.OpRun, Desc: "stop etcd here before its db is read (" + running + ")", Cmd: stop, Changes: true},
		{Kind: opMemberCopy, Payload: memberCopyPayload{Remote: db, Local: src.Path},
			Desc: fmt.Sprintf("%s -> %s (0600) over SFTP: snapshot status read again (revision at least %d), sha256 on the host and on the bastion, sidecar %s",
				db, src.Path, src.Revision, filepath.Base(snapshot.SidecarPath(src.Path)))},
	}}}
	return sp, nil
}

// memberCopyPayload is the copy op's files: the member's db on its host
// (Remote) and where it is filed on the bastion (Local, 0600).
type memberCopyPayload struct {
	Remote string `json:"remote"`
	Local  string `json:"local"`
}

// Exec copies the db once etcd is stopped and points the run's snapshot at
// the copy. It runs on a context Ctrl-C does not cancel: never half a file.
func (c *MemberCopy) Exec(ctx context.Context, env *orchestrator.Env, t *orchestrator.Task, op *orchestrator.Op, conn transport.Conn) (orchestrator.OpResult, error) {
	ctx = context.WithoutCancel(ctx)
	t0 := time.Now()
	res := orchestrator.OpResult{}
	pl, err := orchestrator.PayloadOf[memberCopyPayload](op)
	if err != nil {
		return res, err
	}
	f, err := c.r.Etcd(t.Host)
	if err != nil {
		return res, err
	}
	// Read again now that etcd is stopped: the plan may have had only the
	// member's API answer, and the db must still be readable.
	db := etcdhost.ReadMemberDB(ctx, conn, f)
	if !db.Usable() {
		return res, fmt.Errorf("the db %s cannot be read now: %s", pl.Remote, db.Error)
	}
	planned := c.r.Snapshot.Revision
	if db.Revision < planned {
		return res, fmt.Errorf("the db %s is at revision %d, below the %d the plan read: not copied; run `ezrestore plan` again", pl.Remote, db.Revision, planned)
	}
	size, sum, err := transport.RemoteSizeSha256(ctx, conn, pl.Remote)
	if err != nil {
		return res, fmt.Errorf("size and sha256 of %s: %w", pl.Remote, err)
	}
	dir := filepath.Dir(pl.Local)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".member-copy-%d-%d.db", os.Getpid(), time.Now().UnixNano()))
	defer os.Remove(tmp)
	// No progress bar: the run's one bar (env.Progress) is the push's.
	if err := conn.Download(ctx, pl.Remote, tmp, nil); err != nil {
		return res, err
	}
	info, err := snapshot.Inspect(tmp)
	if err != nil {
		return res, fmt.Errorf("the copy of %s: %w", pl.Remote, err)
	}
	if info.SHA256 != sum || info.Size != size {
		return res, fmt.Errorf("the copy of %s differs from the file on the host (sha256 %s, %d bytes there; %s, %d bytes here)", pl.Remote, sum, size, info.SHA256, info.Size)
	}
	if err := os.Link(tmp, pl.Local); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return res, fmt.Errorf("%s exists already: not overwritten", pl.Local)
		}
		return res, err
	}
	now := time.Now().UTC()
	side := snapshot.Sidecar{SourceHost: t.Host, SourcePath: pl.Remote, EtcdVersion: f.ServerVersion, Revision: info.Revision,
		Keys: info.Keys, SHA256: info.SHA256, Size: info.Size, Time: now.Truncate(time.Second), Cluster: env.Cluster}
	if err := snapshot.WriteSidecar(pl.Local, &side); err != nil {
		return res, fmt.Errorf("%s is filed but its sidecar is not: %w", pl.Local, err)
	}
	c.r.Snapshot.SHA256, c.r.Snapshot.Size, c.r.Snapshot.Revision, c.r.Snapshot.ModTime = info.SHA256, info.Size, info.Revision, now
	res.Duration = time.Since(t0)
	res.Message = fmt.Sprintf("%s, revision %d, %d keys, sha256 %s (the same on the host); filed as %s",
		transport.Moved(info.Size, res.Duration), info.Revision, info.Keys, info.SHA256, pl.Local)
	if strings.TrimSpace(c.r.Snapshot.How) != "" {
		c.r.Snapshot.How += fmt.Sprintf("; copied at %s, sha256 %s", now.Format(time.RFC3339), info.SHA256)
	}
	return res, nil
}
