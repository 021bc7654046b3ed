package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// The host side of UploadGzip, run by a local sh with the real gzip and
// sha256sum: the file lands with its mode and sum; a wrong sum or a cut
// stream leaves neither the file nor its .part.
func TestGunzipCommand(t *testing.T) {
	for _, tool := range []string{"gzip", "sha256sum", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	data := bytes.Repeat([]byte(`{"kind":"Pod","metadata":{"name":"web-7d4b9c"}}`), 5000)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, GzipLevel)
	zw.Write(data)
	zw.Close()

	dir := t.TempDir()
	remote := filepath.Join(dir, "it's here.db")
	run := func(stdin []byte, want string) (string, error) {
		cmd := exec.Command("sh", "-c", pushCommand(remote, 0o640, int64(len(data)), want, true))
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(gz.Bytes(), want)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.TrimSpace(out) != "sha256 "+want {
		t.Errorf("output %q", out)
	}
	got, err := os.ReadFile(remote)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file differs from the source (%v)", err)
	}
	if st, _ := os.Stat(remote); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	os.Remove(remote)

	if out, err := run(gz.Bytes(), strings.Repeat("0", 64)); err == nil || !strings.Contains(out, "the bastion's is 0000") {
		t.Errorf("a wrong sum was accepted: %v %s", err, out)
	}
	if out, err := run(gz.Bytes()[:gz.Len()/2], want); err == nil {
		t.Errorf("a cut stream was accepted: %s", out)
	}
	for _, p := range []string{remote, remote + ".part"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind after a failure", p)
		}
	}
}

// localSink runs the host side of UploadGzip in a local sh, its stdin
// passed through wrap (to slow or break the writes).
func localSink(t *testing.T, remote, want string, size int64, wrap func(io.WriteCloser) io.WriteCloser) *streamSink {
	t.Helper()
	cmd := exec.Command("sh", "-c", pushCommand(remote, 0o640, size, want, true))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &streamSink{sess: stdin, stdin: wrap(stdin)}
	s.wait = func() (Result, error) {
		err := cmd.Wait()
		res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			res.ExitCode = ee.ExitCode()
			return res, nil
		}
		return res, err
	}
	return s
}

// slowWriter sleeps before every write, as a host whose SSH window is
// full does.
type slowWriter struct {
	io.WriteCloser
	delay time.Duration
}

func (w slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.WriteCloser.Write(p)
}

// brokenWriter fails once after bytes have gone through, as a host whose
// connection drops does.
type brokenWriter struct {
	io.WriteCloser
	left int
}

func (w *brokenWriter) Write(p []byte) (int, error) {
	if w.left -= len(p); w.left < 0 {
		return 0, fmt.Errorf("connection lost")
	}
	return w.WriteCloser.Write(p)
}

func same(w io.WriteCloser) io.WriteCloser { return w }

// streamData is compressible text with incompressible runs, so the stream
// is many chunks long.
func streamData() ([]byte, string) {
	var b bytes.Buffer
	noise := make([]byte, 4096)
	for i := 0; b.Len() < 12<<20; i++ {
		b.WriteString(`{"kind":"Pod","metadata":{"name":"web-7d4b9c","labels":{"app":"web"}}}`)
		if i%8 == 0 {
			rand.Read(noise)
			b.Write(noise)
		}
	}
	sum := sha256.Sum256(b.Bytes())
	return b.Bytes(), hex.EncodeToString(sum[:])
}

func needTools(t *testing.T) {
	for _, tool := range []string{"gzip", "sha256sum", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// One slow host does not hold up the others: with room in the buffer they
// get the whole file and their checks pass while the slow one is still
// being fed; with a small buffer the bytes held stay within it and every
// host still ends with the right file.
func TestStreamToSlowHost(t *testing.T) {
	needTools(t)
	data, want := streamData()
	for _, tc := range []struct {
		name  string
		limit int64
		delay time.Duration
	}{{"roomy", streamBuffer, 120 * time.Millisecond}, {"tight", 1 << 20, 60 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			remotes := []string{filepath.Join(dir, "slow.db"), filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")}
			sinks := []*streamSink{
				localSink(t, remotes[0], want, int64(len(data)), func(w io.WriteCloser) io.WriteCloser { return slowWriter{w, tc.delay} }),
				localSink(t, remotes[1], want, int64(len(data)), same),
				localSink(t, remotes[2], want, int64(len(data)), same),
			}
			out := []StreamResult{{Host: "slow"}, {Host: "a"}, {Host: "b"}}
			var mu sync.Mutex
			seen := map[string]int64{}
			peak := streamTo(context.Background(), bytes.NewReader(data), int64(len(data)), sinks, out, tc.limit, want, func(i int, raw int64) {
				mu.Lock()
				seen[out[i].Host] = raw
				mu.Unlock()
			}, "upload")
			for i, r := range out {
				if r.Err != nil {
					t.Fatalf("%s: %v", r.Host, r.Err)
				}
				got, err := os.ReadFile(remotes[i])
				if err != nil || !bytes.Equal(got, data) || r.SHA256 != want {
					t.Fatalf("%s: file differs from the source (%v)", r.Host, err)
				}
				if st, _ := os.Stat(remotes[i]); st.Mode().Perm() != 0o640 {
					t.Errorf("%s: mode %v, want 0640", r.Host, st.Mode().Perm())
				}
				if seen[r.Host] != int64(len(data)) {
					t.Errorf("%s: progress %d of %d", r.Host, seen[r.Host], len(data))
				}
			}
			chunks := out[0].Wire / streamChunk
			t.Logf("%d wire bytes (%d chunks) for %d raw; slow %v, fast %v %v; peak held %d", out[0].Wire, chunks, len(data), out[0].Duration, out[1].Duration, out[2].Duration, peak)
			if chunks < 10 {
				t.Fatalf("only %d chunks: the test needs a longer stream", chunks)
			}
			if peak > tc.limit+streamChunk*5/4 {
				t.Errorf("held %d bytes at once, over the limit %d", peak, tc.limit)
			}
			slow, fast := out[0].Duration, max(out[1].Duration, out[2].Duration)
			if tc.limit == streamBuffer {
				// The slow host needs >= chunks*delay; the others are done
				// while it still has many chunks to go (not slow/2: under
				// -race the compressor alone takes seconds).
				if fast+10*tc.delay > slow {
					t.Errorf("fast hosts took %v, the slow one %v: they waited on it", fast, slow)
				}
			} else if fast >= slow {
				t.Errorf("fast hosts took %v, not less than the slow one's %v", fast, slow)
			}
		})
	}
}

// A host whose connection breaks mid-stream is reported and leaves neither
// the file nor its .part; the others get the file.
func TestStreamToBrokenHost(t *testing.T) {
	needTools(t)
	data, want := streamData()
	dir := t.TempDir()
	remotes := []string{filepath.Join(dir, "a.db"), filepath.Join(dir, "broken.db"), filepath.Join(dir, "b.db")}
	sinks := []*streamSink{
		localSink(t, remotes[0], want, int64(len(data)), same),
		localSink(t, remotes[1], want, int64(len(data)), func(w io.WriteCloser) io.WriteCloser { return &brokenWriter{w, 1 << 20} }),
		localSink(t, remotes[2], want, int64(len(data)), same),
	}
	out := []StreamResult{{Host: "a"}, {Host: "broken"}, {Host: "b"}}
	streamTo(context.Background(), bytes.NewReader(data), int64(len(data)), sinks, out, 2<<20, want, nil, "upload")
	if out[1].Err == nil || !strings.Contains(out[1].Err.Error(), "connection lost") {
		t.Errorf("broken host: %v, want its write error", out[1].Err)
	}
	for _, p := range []string{remotes[1], remotes[1] + ".part"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind after a failure", p)
		}
	}
	for _, i := range []int{0, 2} {
		if out[i].Err != nil {
			t.Fatalf("%s: %v", out[i].Host, out[i].Err)
		}
		if got, err := os.ReadFile(remotes[i]); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: file differs from the source (%v)", out[i].Host, err)
		}
	}
}

// A source that ends short of its size (a file that changed) fails every
// host, and none is left with the file or a .part.
func TestStreamToShortSource(t *testing.T) {
	needTools(t)
	data, want := streamData()
	dir := t.TempDir()
	remotes := []string{filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")}
	sinks := []*streamSink{localSink(t, remotes[0], want, int64(len(data)), same), localSink(t, remotes[1], want, int64(len(data)), same)}
	out := []StreamResult{{Host: "a"}, {Host: "b"}}
	streamTo(context.Background(), bytes.NewReader(data), int64(len(data))+1, sinks, out, streamBuffer, want, nil, "upload")
	for i, r := range out {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "did the file change") {
			t.Errorf("%s: %v, want the short read reported", r.Host, r.Err)
		}
		for _, p := range []string{remotes[i], remotes[i] + ".part"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s left behind after a failure", p)
			}
		}
	}
}

// compressMembers cuts the file into gzip members that read back, in
// order, as the file; raw offsets only grow and end at the size; a put that
// fails (every host gone) stops it with that error.
func TestCompressMembers(t *testing.T) {
	data, _ := streamData()
	for _, size := range []int{0, 1, memberSize, 3*memberSize + 5, len(data)} {
		for _, workers := range []int{1, 3} {
			var stream bytes.Buffer
			var last int64
			var chunks int
			sent, err := compressMembers(context.Background(), bytes.NewReader(data[:size]), func(c chunk) error {
				if c.raw < last {
					t.Errorf("raw went back from %d to %d", last, c.raw)
				}
				if len(c.data) > streamChunk {
					t.Errorf("a chunk of %d bytes, over %d", len(c.data), streamChunk)
				}
				last = c.raw
				chunks++
				stream.Write(c.data)
				return nil
			}, workers)
			if err != nil || sent != int64(size) || last != int64(size) {
				t.Fatalf("size %d, %d workers: sent %d, last raw %d, %v", size, workers, sent, last, err)
			}
			if size == 0 {
				continue
			}
			zr, err := gzip.NewReader(&stream) // reads every member, as gzip -dc does
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, data[:size]) {
				t.Fatalf("size %d, %d workers: the members read back as %d bytes that differ (%v)", size, workers, len(got), err)
			}
			if want := (size + memberSize - 1) / memberSize; size > 0 && chunks < want {
				t.Errorf("size %d: %d chunks, want at least one per member (%d)", size, chunks, want)
			}
		}
	}
	gone := errors.New("no host is left to send to")
	n := 0
	_, err := compressMembers(context.Background(), bytes.NewReader(data), func(c chunk) error {
		if n++; n == 3 {
			return gone
		}
		return nil
	}, 2)
	if !errors.Is(err, gone) {
		t.Errorf("after a failed put: %v, want %v", err, gone)
	}
}
