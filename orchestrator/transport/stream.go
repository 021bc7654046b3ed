package transport

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Compressed fan-out: the bastion reads and compresses the file once and
// streams the same compressed bytes to every host, where `gzip -dc` writes
// it. Behind a slow uplink (the bastion's link carries the file once per
// host) this divides the link time by the compression ratio, at the cost of
// one compressor on the bastion and one decompressor per host.
//
// gzip, not zstd, on the wire: zstd compresses faster and tighter, but a
// production host cannot be relied on to have a zstd binary, while gzip is
// on every Linux host (Debian and RHEL ship it as essential). Relaying (one
// copy over the uplink, host to host from there) would need the hosts to
// reach each other over SSH with credentials of their own, which a restore
// must not assume either.

// GzipLevel is the compression level of UploadGzip: gzip's fastest, so a
// single bastion core keeps up with a 1 Gbit/s link on Kubernetes data.
const GzipLevel = gzip.BestSpeed

// streamChunk is how much of the file is read and compressed at a time.
const streamChunk = 256 << 10

// StreamResult is what UploadGzip did on one host.
type StreamResult struct {
	Host string
	// Err is why this host did not get the file (the others still may).
	Err error
	// SHA256 is the sum the host computed on the file it holds.
	SHA256 string
	// Raw is the file's size; Wire what crossed the link to this host.
	Raw, Wire int64
	Duration  time.Duration
}

// UploadGzip copies local to remote on every conn at once: compressed once
// here, decompressed by each host's gzip into remote.part (mode set before
// any byte lands), whose sha256 the host then computes over what it holds;
// only when it equals wantSHA256 is remote.part renamed to remote. A host
// that fails (or falls behind and breaks) is dropped from the stream and
// reported; the others go on. progress, when set, gets per host the raw
// bytes sent so far.
func UploadGzip(ctx context.Context, conns []Conn, local, remote string, mode os.FileMode, wantSHA256 string, progress func(host string, raw int64)) []StreamResult {
	out := make([]StreamResult, len(conns))
	for i, c := range conns {
		out[i].Host = c.Host().Name
	}
	src, err := os.Open(local)
	if err != nil {
		for i := range out {
			out[i].Err = fmt.Errorf("upload: %w", err)
		}
		return out
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil || !st.Mode().IsRegular() {
		for i := range out {
			out[i].Err = fmt.Errorf("upload: %s is not a readable regular file (%v)", local, err)
		}
		return out
	}
	size := st.Size()
	if _, err := hex.DecodeString(wantSHA256); err != nil || len(wantSHA256) != 64 {
		for i := range out {
			out[i].Err = fmt.Errorf("upload %s: a sha256 (64 hex digits) to check on the hosts is required", local)
		}
		return out
	}

	t0 := time.Now()
	cmd := gunzipCommand(remote, mode, wantSHA256)
	sinks := make([]*streamSink, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		sc, ok := c.(*sshConn)
		if !ok {
			out[i].Err = fmt.Errorf("upload: compressed streaming needs an SSH connection")
			continue
		}
		s, err := sc.startStdin(ctx, WrapBecome(sc.host, cmd))
		if err != nil {
			out[i].Err = fmt.Errorf("upload %s to %s: %w", local, remote, err)
			continue
		}
		sinks[i] = s
	}
	// The compressed stream goes to every live sink; a sink whose write
	// fails is dropped, so one broken host does not stop the others.
	fan := &fanWriter{sinks: sinks}
	zw, _ := gzip.NewWriterLevel(fan, GzipLevel)
	buf := make([]byte, streamChunk)
	var sent int64
	var readErr error
	for {
		if ctx.Err() != nil {
			readErr = ctx.Err()
			break
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := zw.Write(buf[:n]); werr != nil {
				readErr = werr // every sink is gone
				break
			}
			sent += int64(n)
			if progress != nil {
				for i, s := range sinks {
					if s != nil && !s.dead.Load() {
						progress(out[i].Host, sent)
					}
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = fmt.Errorf("read %s: %w", local, err)
			break
		}
	}
	if readErr == nil {
		readErr = zw.Close()
	}
	if readErr == nil && sent != size {
		readErr = fmt.Errorf("read %d of %d bytes of %s (did it change?)", sent, size, local)
	}
	for i, s := range sinks {
		if s == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if readErr != nil {
				s.abort()
			}
			res, err := s.finish()
			out[i].Raw, out[i].Wire, out[i].Duration = sent, s.wire.Load(), time.Since(t0)
			switch {
			case readErr != nil:
				out[i].Err = fmt.Errorf("upload %s to %s: %w", local, remote, readErr)
			case err != nil:
				out[i].Err = fmt.Errorf("upload %s to %s: %w", local, remote, err)
			case res.ExitCode != 0:
				out[i].Err = fmt.Errorf("upload %s to %s: exit status %d: %s", local, remote, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
			default:
				f := strings.Fields(string(res.Stdout))
				if len(f) < 2 || f[0] != "sha256" || f[1] != wantSHA256 {
					out[i].Err = fmt.Errorf("upload %s to %s: the host's check said %q", local, remote, strings.TrimSpace(string(res.Stdout)))
				} else {
					out[i].SHA256 = f[1]
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// gunzipCommand writes stdin, gunzipped, to remote.part (created 0600 by the
// umask, then given mode), hashes the file it wrote, and renames it into
// place only when the sum is the one wanted; it prints "sha256 <sum>". On
// any failure (a cut stream, a wrong sum) the .part is removed.
func gunzipCommand(remote string, mode os.FileMode, want string) string {
	part := Quote(remote + ".part")
	return fmt.Sprintf(`set -e
umask 077
p=%[1]s
trap 'rm -f -- "$p"' EXIT
gzip -dc > "$p"
chmod %04[3]o "$p"
sum=$(sha256sum < "$p" | cut -d ' ' -f 1)
if [ "$sum" != %[4]s ]; then echo "the file written has sha256 $sum, the bastion's is %[5]s" >&2; exit 3; fi
mv -f -- "$p" %[2]s
echo "sha256 $sum"`, part, Quote(remote), mode.Perm(), Quote(want), want)
}

// streamSink is one remote command fed through its stdin.
type streamSink struct {
	sess   interface{ Close() error }
	stdin  io.WriteCloser
	wait   func() (Result, error)
	dead   atomic.Bool
	wire   atomic.Int64
	werr   error
	closed bool
}

func (s *streamSink) Write(p []byte) (int, error) {
	n, err := s.stdin.Write(p)
	s.wire.Add(int64(n))
	return n, err
}

// abort ends the remote command without a complete stream: gzip then fails
// on the truncated input and the .part is removed.
func (s *streamSink) abort() {
	s.dead.Store(true)
	s.sess.Close()
}

func (s *streamSink) finish() (Result, error) {
	if !s.closed {
		s.stdin.Close()
		s.closed = true
	}
	res, err := s.wait()
	if err == nil && s.werr != nil {
		err = s.werr
	}
	return res, err
}

// fanWriter writes to every live sink; it fails only when none is left.
type fanWriter struct {
	sinks []*streamSink
}

func (f *fanWriter) Write(p []byte) (int, error) {
	alive := 0
	for _, s := range f.sinks {
		if s == nil || s.dead.Load() {
			continue
		}
		if _, err := s.Write(p); err != nil {
			s.werr = err
			s.dead.Store(true)
			continue
		}
		alive++
	}
	if alive == 0 {
		return 0, fmt.Errorf("no host is left to send to")
	}
	return len(p), nil
}

// startStdin starts line on the host with a pipe to its stdin; the returned
// sink's finish closes the pipe and waits for the exit status.
func (c *sshConn) startStdin(ctx context.Context, line string) (*streamSink, error) {
	sess, err := c.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("open session: %w", err)
	}
	var stdout, stderr lockedBuffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if err := sess.Start(line); err != nil {
		sess.Close()
		return nil, fmt.Errorf("start command: %w", err)
	}
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	s := &streamSink{sess: sess, stdin: stdin}
	s.wait = func() (Result, error) {
		defer stop()
		defer sess.Close()
		err := sess.Wait()
		res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start)}
		if err != nil {
			if ee, ok := err.(interface{ ExitStatus() int }); ok {
				res.ExitCode = ee.ExitStatus()
				return res, nil
			}
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, fmt.Errorf("command ended without an exit status: %w", err)
		}
		return res, nil
	}
	return s, nil
}
