package transport

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/ezrestore/ezrestore/internal/syncbuf"
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

// memberSize is how much of the file each gzip member holds: the file is
// cut into members compressed in parallel (one worker per core, see
// streamWorkers) and sent in order; gzip -dc and zlib read the members as
// one stream. A member starts with an empty window, which costs about 0.1%
// of the ratio at this size.
const memberSize = 1 << 20

// streamChunk is the most compressed bytes put in the log at once.
const streamChunk = 256 << 10

// streamWorkers is how many members are compressed at once: one per core,
// at most 8. One core compresses Kubernetes data at about 230 MiB/s at
// BestSpeed, which is less than a 1 Gbit/s link carries for three hosts
// (3 x 119 MiB/s of wire at a ratio of 6 is 2 GiB/s of file).
func streamWorkers() int { return min(runtime.NumCPU(), 8) }

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
// any byte lands), whose sha256 the host computes over the bytes it writes,
// in the same pass (pushCommand); only when it equals wantSHA256 is
// remote.part renamed to remote. A host
// that fails (or falls behind and breaks) is dropped from the stream and
// reported; the others go on. progress, when set, gets per host the raw
// bytes sent so far.
func UploadGzip(ctx context.Context, conns []Conn, local, remote string, mode os.FileMode, wantSHA256 string, progress func(host string, raw int64)) []StreamResult {
	remotes := make([]string, len(conns))
	for i := range remotes {
		remotes[i] = remote
	}
	var byIndex func(int, int64)
	if progress != nil {
		byIndex = func(i int, raw int64) { progress(conns[i].Host().Name, raw) }
	}
	return uploadGzipTo(ctx, conns, remotes, local, mode, wantSHA256, byIndex)
}

// uploadGzipTo is UploadGzip with a path of its own on each host.
// progress gets the index of the conn.
func uploadGzipTo(ctx context.Context, conns []Conn, remotes []string, local string, mode os.FileMode, wantSHA256 string, progress func(i int, raw int64)) []StreamResult {
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

	sinks := make([]*streamSink, len(conns))
	for i, c := range conns {
		sc, ok := c.(*sshConn)
		if !ok {
			out[i].Err = fmt.Errorf("upload: compressed streaming needs an SSH connection")
			continue
		}
		s, err := sc.startStdin(ctx, sc.asRoot(pushCommand(remotes[i], mode, size, wantSHA256, true)))
		if err != nil {
			out[i].Err = fmt.Errorf("upload %s to %s: %w", local, remotes[i], err)
			continue
		}
		sinks[i] = s
	}
	what := fmt.Sprintf("push %s (gzip stream)", local)
	if len(remotes) > 0 && remotes[0] == remotes[len(remotes)-1] {
		what = fmt.Sprintf("push %s to %s (gzip stream)", local, remotes[0])
	}
	streamTo(ctx, src, size, sinks, out, streamBuffer, wantSHA256, progress, what)
	return out
}

// streamBuffer bounds the compressed bytes held for hosts that are behind:
// the compressor waits only when the slowest live host is this far behind.
// 8 MiB is about 50 MiB of a Kubernetes snapshot's lead; more only grows the
// bastion's memory (with the garbage of chunks already sent, the heap is
// about twice what the log holds: 32 MiB here made a 2 GiB push peak at
// 109 MB RSS against the target of 100 MB).
const streamBuffer = 8 << 20

// streamTo compresses src once into a shared log of chunks and runs one
// writer per live sink, each taking the chunks at its own pace: a host
// whose SSH window is full holds up only itself (and, once it is limit
// bytes behind, the compressor), never the writes to the other hosts. A
// host whose write fails is dropped; the others go on. Each host's stdin is
// closed, and its check read, as soon as it has the whole stream, so fast
// hosts finish before slow ones. out[i] gets sink i's result; nil sinks are
// left as they are. progress (sink index, raw bytes) may be called from
// several goroutines at once.
// It returns the most compressed bytes the log held at once.
func streamTo(ctx context.Context, src io.Reader, size int64, sinks []*streamSink, out []StreamResult, limit int64, want string, progress func(i int, raw int64), what string) int64 {
	t0 := time.Now()
	lg := newChunkLog(limit)
	stop := context.AfterFunc(ctx, func() { lg.fail(ctx.Err()) })
	defer stop()
	var wg sync.WaitGroup
	// Plain goroutines, not fanout.Each: every writer must run at once, or
	// the compressor would wait on a host whose writer has not started.
	for i, s := range sinks {
		if s == nil {
			continue
		}
		r := lg.join()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendErr := lg.send(r, s, func(raw int64) {
				if progress != nil {
					progress(i, raw)
				}
			})
			if sendErr != nil {
				s.abort() // a cut stream: gzip fails, the .part goes
			}
			res, err := s.finish()
			out[i].Raw, out[i].Wire, out[i].Duration = size, s.wire.Load(), time.Since(t0)
			switch {
			case sendErr != nil:
				out[i].Err = fmt.Errorf("%s: %w", what, sendErr)
			case err != nil:
				out[i].Err = fmt.Errorf("%s: the host's side ended without a status (connection lost? a .part may be left, never the final name): %w", what, err)
			case res.ExitCode != 0:
				out[i].Err = fmt.Errorf("%s: exit status %d: %s", what, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
			default:
				f := strings.Fields(string(res.Stdout))
				if len(f) < 2 || f[0] != "sha256" || f[1] != want {
					out[i].Err = fmt.Errorf("%s: the host's check said %q", what, strings.TrimSpace(string(res.Stdout)))
				} else {
					out[i].SHA256 = f[1]
				}
			}
		}()
	}

	sent, readErr := compressMembers(ctx, src, lg.put, streamWorkers())
	if readErr == nil && sent != size {
		readErr = fmt.Errorf("read %d of %d bytes (did the file change?)", sent, size)
	}
	if readErr != nil {
		lg.fail(readErr)
	} else {
		lg.end()
	}
	wg.Wait()
	return lg.peak
}

// chunk is a piece of the compressed stream; raw is how much of the file
// had gone into the compressor before it.
type chunk struct {
	data []byte
	raw  int64
}

// chunkLog is the compressed stream as a sequence of chunks that every
// host's writer reads at its own pace. Chunks every live reader has passed
// are dropped; put waits while the chunks held reach limit bytes.
type chunkLog struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks []chunk // chunks[0] is chunk number base
	base   int
	held   int64
	limit  int64
	peak   int64 // most bytes ever held (tests)
	pos    []int // next chunk number per reader; -1 once it is dropped
	ended  bool
	err    error
}

func newChunkLog(limit int64) *chunkLog {
	l := &chunkLog{limit: limit}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// join adds a reader at the start of the stream (before any put).
func (l *chunkLog) join() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pos = append(l.pos, 0)
	return len(l.pos) - 1
}

func (l *chunkLog) live() int {
	n := 0
	for _, p := range l.pos {
		if p >= 0 {
			n++
		}
	}
	return n
}

// put appends c, first waiting while limit bytes are held for the slowest
// live reader. It fails when no reader is left or the stream has failed.
func (l *chunkLog) put(c chunk) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.err == nil && l.live() > 0 && l.held > 0 && l.held+int64(len(c.data)) > l.limit {
		l.cond.Wait()
	}
	if l.err != nil {
		return l.err
	}
	if l.live() == 0 {
		return fmt.Errorf("no host is left to send to")
	}
	l.chunks = append(l.chunks, c)
	l.held += int64(len(c.data))
	l.peak = max(l.peak, l.held)
	l.cond.Broadcast()
	return nil
}

// end says the stream is complete: readers stop once they have it all.
func (l *chunkLog) end() {
	l.mu.Lock()
	l.ended = true
	l.cond.Broadcast()
	l.mu.Unlock()
}

// fail stops every reader with err (the first one given is kept).
func (l *chunkLog) fail(err error) {
	l.mu.Lock()
	if l.err == nil && !l.ended {
		l.err = err
	}
	l.cond.Broadcast()
	l.mu.Unlock()
}

// trim drops the chunks every live reader has passed.
func (l *chunkLog) trim() {
	low := -1
	for _, p := range l.pos {
		if p >= 0 && (low < 0 || p < low) {
			low = p
		}
	}
	if low < 0 {
		low = l.base + len(l.chunks)
	}
	for l.base < low && len(l.chunks) > 0 {
		l.held -= int64(len(l.chunks[0].data))
		l.chunks[0] = chunk{}
		l.chunks = l.chunks[1:]
		l.base++
	}
	l.cond.Broadcast()
}

// send writes reader r's chunks to w until the stream ends (nil) or fails,
// or a write fails (then r is dropped). done gets each chunk's raw offset
// once written, and the raw size at the end.
func (l *chunkLog) send(r int, w io.Writer, done func(raw int64)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for l.err == nil && !l.ended && l.pos[r] >= l.base+len(l.chunks) {
			l.cond.Wait()
		}
		if l.err != nil {
			l.pos[r] = -1
			l.trim()
			return l.err
		}
		if l.pos[r] >= l.base+len(l.chunks) { // ended and all written
			l.pos[r] = -1
			l.trim()
			return nil
		}
		c := l.chunks[l.pos[r]-l.base]
		l.mu.Unlock()
		_, err := w.Write(c.data)
		if err == nil {
			done(c.raw)
		}
		l.mu.Lock()
		if err != nil {
			l.pos[r] = -1
			l.trim()
			return err
		}
		l.pos[r]++
		l.trim()
	}
}

// streamSink is one remote command fed through its stdin.
type streamSink struct {
	sess   interface{ Close() error }
	stdin  io.WriteCloser
	wait   func() (Result, error)
	wire   atomic.Int64
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
	s.sess.Close()
}

func (s *streamSink) finish() (Result, error) {
	if !s.closed {
		s.stdin.Close()
		s.closed = true
	}
	return s.wait()
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
	var stdout, stderr syncbuf.Buffer
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

// compressMembers reads src in memberSize pieces, compresses each into a
// gzip member on one of workers goroutines and puts the members in file
// order, each as a chunk whose raw is the file offset at its end. It
// returns the bytes read. A put error (every host gone) or ctx stops it.
func compressMembers(ctx context.Context, src io.Reader, put func(chunk) error, workers int) (int64, error) {
	workers = max(workers, 1)
	type job struct {
		in   []byte
		end  int64
		done chan []byte
	}
	// At most about 2*workers+2 members of the file in memory at once.
	jobs := make(chan *job, workers)       // to the workers
	ordered := make(chan *job, workers+1)  // to the putter, in file order
	free := make(chan []byte, workers*2+2) // input buffers to reuse
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&out, GzipLevel)
			for j := range jobs {
				out.Reset()
				zw.Reset(&out)
				zw.Write(j.in) // a bytes.Buffer does not fail
				zw.Close()
				j.done <- bytes.Clone(out.Bytes())
				select {
				case free <- j.in:
				default:
				}
			}
		}()
	}
	// The reader: cut src into members, hand them out in order.
	var sent int64
	readErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(jobs)
		for {
			var in []byte
			select {
			case in = <-free:
			default:
				in = make([]byte, memberSize)
			}
			n, err := io.ReadFull(src, in[:memberSize])
			if n > 0 {
				sent += int64(n)
				j := &job{in: in[:n], end: sent, done: make(chan []byte, 1)}
				select {
				case ordered <- j:
				case <-quit:
					readErr <- nil
					return
				}
				jobs <- j
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- fmt.Errorf("read: %w", err)
				return
			}
			if ctx.Err() != nil {
				readErr <- ctx.Err()
				return
			}
		}
	}()
	var putErr error
	for j := range ordered {
		data := <-j.done
		// In pieces of at most streamChunk, so a host's writer and the
		// log's limit move in steps that small; only the last piece
		// completes the member's raw bytes.
		for len(data) > 0 && putErr == nil {
			n := min(len(data), streamChunk)
			raw := j.end - int64(len(j.in))
			if n == len(data) {
				raw = j.end
			}
			if putErr = put(chunk{data: data[:n:n], raw: raw}); putErr != nil {
				close(quit)
			}
			data = data[n:]
		}
	}
	wg.Wait()
	if err := <-readErr; err != nil {
		return sent, err
	}
	return sent, putErr
}

// GzipMembers writes src to dst as the gzip members UploadGzip sends,
// compressed on workers goroutines (0: one per core, as UploadGzip), and
// returns the bytes read: the bastion's side of the stream alone, for
// benchmarks.
func GzipMembers(ctx context.Context, src io.Reader, dst io.Writer, workers int) (int64, error) {
	if workers <= 0 {
		workers = streamWorkers()
	}
	return compressMembers(ctx, src, func(c chunk) error {
		_, err := dst.Write(c.data)
		return err
	}, workers)
}
