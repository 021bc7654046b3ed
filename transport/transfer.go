package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"

	"github.com/ezrestore/ezrestore/internal/syncbuf"
)

// sftpServerScript starts the host's sftp-server binary; run through sudo it
// gives a non-root login an SFTP channel that reads and writes as root.
const sftpServerScript = `for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server; do [ -x "$p" ] && exec "$p"; done; echo "ezrestore: no sftp-server binary on this host" >&2; exit 127`

// Transfer tuning. SFTP only promises requests of 32 KiB, the library's
// checked maximum; OpenSSH's sftp-server takes 255 KiB of data per request
// (its limits@openssh.com), which roughly halves the CPU spent per byte on
// both ends. Requests in flight make up for latency on real links.
const (
	sftpSafePacket    = 32 * 1024
	sftpOpenSSHPacket = 255 * 1024
	sftpConcurrency   = 32
	// cleanupTimeout bounds removing a partial file after a failed upload.
	cleanupTimeout = 15 * time.Second
)

// sftpSession is one SFTP client over its own SSH channel, so cancelling one
// transfer (which closes it) does not disturb others on the same connection.
type sftpSession struct {
	client *sftp.Client
	close  func() error
}

// openSFTP opens an SFTP client that acts as root: the "sftp" subsystem for a
// root login, else the sftp-server binary through `sudo -n`.
func (c *sshConn) openSFTP(ctx context.Context) (*sftpSession, error) {
	opts := []sftp.ClientOption{
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(sftpConcurrency),
		sftp.MaxPacketChecked(sftpSafePacket),
	}
	if strings.Contains(string(c.client.ServerVersion()), "OpenSSH") {
		opts = append(opts, sftp.MaxPacketUnchecked(sftpOpenSSHPacket))
	}
	if login := c.route.User.Value; !needsSudo(c.host, login) && login == "root" {
		cl, err := sftp.NewClient(c.client, opts...)
		if err != nil {
			return nil, fmt.Errorf("open sftp: %w", err)
		}
		return &sftpSession{client: cl, close: cl.Close}, nil
	}
	sess, err := c.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open sftp session: %w", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("open sftp session: %w", err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("open sftp session: %w", err)
	}
	var stderr syncbuf.Buffer
	sess.Stderr = &stderr
	// Always root here: Upload's contract is a file written as root, whatever become_user says.
	if err := sess.Start("sudo -n -- sh -c " + Quote(sftpServerScript)); err != nil {
		sess.Close()
		return nil, fmt.Errorf("start sftp-server through sudo: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	cl, err := sftp.NewClientPipe(stdout, stdin, opts...)
	stop()
	if err != nil {
		sess.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "password is required") || strings.Contains(msg, "a terminal is required") {
			return nil, fmt.Errorf("sftp through sudo: %w", ErrSudoPassword)
		}
		if msg != "" {
			return nil, fmt.Errorf("sftp-server through sudo failed: %s", firstLine([]byte(msg)))
		}
		return nil, fmt.Errorf("sftp-server through sudo: %w", err)
	}
	return &sftpSession{client: cl, close: func() error {
		err := cl.Close()
		sess.Close()
		return err
	}}, nil
}

// Upload copies local to remote as root: it writes remote.part with mode set
// before any byte lands, then renames it into place, so the final name never
// holds a partial file. On failure or cancellation the .part is removed.
func (c *sshConn) Upload(ctx context.Context, local, remote string, mode os.FileMode, progress func(written int64)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	src, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("upload: %s is not a regular file", local)
	}

	s, err := c.openSFTP(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { s.close() })
	defer stop()
	defer s.close()

	part := remote + ".part"
	fail := func(what string, err error) error {
		s.close()
		c.removeRemote(part)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("upload %s to %s: %s: %w", local, remote, what, err)
	}
	dst, err := s.client.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("upload %s to %s: create %s: %w", local, remote, part, err)
	}
	// Restrict the mode before the data arrives (the server created the file
	// with its umask's permissions, or kept an older .part's).
	if err := dst.Chmod(mode.Perm()); err != nil {
		dst.Close()
		return fail("chmod", err)
	}
	// progressReader keeps Size, so ReadFrom still writes concurrently.
	pr := &progressReader{f: src, size: st.Size(), progress: progress}
	n, err := dst.ReadFrom(pr)
	if err != nil {
		dst.Close()
		return fail("write", err)
	}
	if err := dst.Close(); err != nil {
		return fail("close", err)
	}
	if n != st.Size() {
		return fail("write", fmt.Errorf("wrote %d of %d bytes", n, st.Size()))
	}
	if rst, err := s.client.Stat(part); err != nil {
		return fail("stat", err)
	} else if rst.Size() != st.Size() {
		return fail("verify size", fmt.Errorf("remote has %d bytes, local %d", rst.Size(), st.Size()))
	}
	if err := renameOver(s.client, part, remote); err != nil {
		return fail("rename into place", err)
	}
	return nil
}

// renameOver moves from onto to, replacing to: atomically with OpenSSH's
// posix-rename extension, else by removing to first.
func renameOver(cl *sftp.Client, from, to string) error {
	if _, ok := cl.HasExtension("posix-rename@openssh.com"); ok {
		return cl.PosixRename(from, to)
	}
	if err := cl.Remove(to); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return cl.Rename(from, to)
}

// removeRemote deletes a leftover partial file, best effort, outside the
// caller's (maybe cancelled) context.
func (c *sshConn) removeRemote(p string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	c.Run(ctx, "rm -f -- "+Quote(p))
}

// Download copies remote to local (0600): it writes local.part and renames it
// into place once complete.
func (c *sshConn) Download(ctx context.Context, remote, local string, progress func(read int64)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := c.openSFTP(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { s.close() })
	defer stop()
	defer s.close()

	src, err := s.client.Open(remote)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("download %s: %w", remote, err)
	}
	defer src.Close()

	part := local + ".part"
	dst, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("download %s: %w", remote, err)
	}
	fail := func(err error) error {
		dst.Close()
		os.Remove(part)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("download %s to %s: %w", remote, local, err)
	}
	if err := dst.Chmod(0o600); err != nil { // an older .part may have had another mode
		return fail(err)
	}
	if _, err := src.WriteTo(&progressWriter{w: dst, progress: progress}); err != nil {
		return fail(err)
	}
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	if err := dst.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(part, local); err != nil {
		os.Remove(part)
		return fmt.Errorf("download %s to %s: %w", remote, local, err)
	}
	return nil
}

// RemoteSha256 returns the hex sha256 of a file on the host, as sha256sum prints it.
func RemoteSha256(ctx context.Context, c Conn, remote string) (string, error) {
	_, sum, err := RemoteSizeSha256(ctx, c, remote)
	return sum, err
}

// RemoteSizeSha256 returns the size and hex sha256 of a file on the host,
// in one round trip.
func RemoteSizeSha256(ctx context.Context, c Conn, remote string) (int64, string, error) {
	q := Quote(remote)
	res, err := c.Run(ctx, "stat -c %s -- "+q+" && sha256sum -- "+q)
	if err != nil {
		return 0, "", err
	}
	if res.ExitCode != 0 {
		return 0, "", fmt.Errorf("sha256sum %s: exit %d: %s", remote, res.ExitCode, firstLine(res.Stderr))
	}
	lines := strings.SplitN(strings.TrimSpace(string(res.Stdout)), "\n", 2)
	var f []string
	if len(lines) == 2 {
		f = strings.Fields(lines[1])
	}
	size, err := strconv.ParseInt(strings.TrimSpace(lines[0]), 10, 64)
	// sha256sum escapes names with backslashes by prefixing the sum with '\'.
	if err != nil || len(f) == 0 || len(strings.TrimPrefix(f[0], `\`)) != 64 {
		return 0, "", fmt.Errorf("sha256sum %s: unexpected output %q", remote, firstLine(res.Stdout))
	}
	return size, strings.TrimPrefix(f[0], `\`), nil
}

// progressReader counts bytes read. Size lets sftp's ReadFrom plan concurrent writes.
type progressReader struct {
	f        *os.File
	size     int64
	n        atomic.Int64
	progress func(int64)
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	if n > 0 && r.progress != nil {
		r.progress(r.n.Add(int64(n)))
	}
	return n, err
}

func (r *progressReader) Size() int64 { return r.size }

// progressWriter counts bytes written.
type progressWriter struct {
	w        io.Writer
	n        int64
	progress func(int64)
}

func (w *progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.n += int64(n)
	if w.progress != nil && n > 0 {
		w.progress(w.n)
	}
	return n, err
}
