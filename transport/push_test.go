package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// The host side of Push, both its python3 and its shell form, raw and
// gzipped (as several gzip members, as the parallel compressor sends), run by
// a local sh with the real tools: the file lands whole with its mode; a wrong
// sum, a short or corrupt stream or an unwritable .part leaves neither the
// file nor its .part, and says why.
func TestPushCommand(t *testing.T) {
	needTools(t)
	data := bytes.Repeat([]byte(`{"kind":"Secret","metadata":{"name":"db-creds"}}`), 7000)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	var members bytes.Buffer // three gzip members, one stream to gzip -dc
	for _, part := range [][]byte{data[:1000], data[1000:200000], data[200000:]} {
		zw, _ := gzip.NewWriterLevel(&members, GzipLevel)
		zw.Write(part)
		zw.Close()
	}
	type form struct {
		name string
		cmd  func(remote string, mode os.FileMode, size int64, want string, gz bool) string
	}
	forms := []form{{"shell", pushShell}}
	if _, err := exec.LookPath("python3"); err == nil {
		forms = append(forms, form{"python3", func(remote string, mode os.FileMode, size int64, want string, gz bool) string {
			return pushPython(remote, mode, size, want, gz)
		}})
	} else {
		t.Log("python3 is not installed: only the shell form is tested")
	}
	for _, f := range forms {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s gz=%v", f.name, gz), func(t *testing.T) {
				stream := data
				if gz {
					stream = members.Bytes()
				}
				dir := t.TempDir()
				remote := filepath.Join(dir, "it's here.db")
				run := func(stdin []byte, size int64, want string) (string, string, int) {
					cmd := exec.Command("sh", "-c", f.cmd(remote, 0o640, size, want, gz))
					cmd.Stdin = bytes.NewReader(stdin)
					var stdout, stderr bytes.Buffer
					cmd.Stdout, cmd.Stderr = &stdout, &stderr
					err := cmd.Run()
					var ee *exec.ExitError
					if err != nil && !errors.As(err, &ee) {
						t.Fatal(err)
					}
					return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
				}
				gone := func(what string) {
					t.Helper()
					for _, p := range []string{remote, remote + ".part", remote + ".part.in", remote + ".part.out"} {
						if _, err := os.Stat(p); err == nil {
							t.Errorf("%s: %s left behind", what, p)
						}
					}
				}
				// An older .part with a wide mode is not reused.
				if err := os.WriteFile(remote+".part", []byte("old"), 0o666); err != nil {
					t.Fatal(err)
				}
				size := int64(len(data))
				out, errOut, code := run(stream, size, want)
				if code != 0 || strings.TrimSpace(out) != "sha256 "+want {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
				}
				got, err := os.ReadFile(remote)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("file differs from the source (%v)", err)
				}
				if st, _ := os.Stat(remote); st.Mode().Perm() != 0o640 {
					t.Errorf("mode %v, want 0640", st.Mode().Perm())
				}
				if _, err := os.Stat(remote + ".part"); err == nil {
					t.Error(".part left beside the file")
				}
				os.Remove(remote)

				bad := strings.Repeat("0", 64)
				out, errOut, code = run(stream, size, bad)
				if code != pushExitDamaged || strings.TrimSpace(out) != "sha256 "+want || !strings.Contains(errOut, "the bastion's is "+bad) {
					t.Errorf("a wrong sum: exit %d, stdout %q, stderr %q", code, out, errOut)
				}
				gone("wrong sum")

				_, errOut, code = run(stream[:len(stream)/2], size, want)
				if code == 0 || errOut == "" {
					t.Errorf("a cut stream: exit %d, stderr %q", code, errOut)
				}
				gone("cut stream")

				if gz {
					bent := bytes.Clone(stream)
					bent[len(bent)/2] ^= 0xff
					if _, errOut, code = run(bent, size, want); code == 0 {
						t.Errorf("a corrupt gzip stream was accepted: %q", errOut)
					}
					gone("corrupt stream")
				}

				// The .part cannot be written (a directory in its way): nothing is kept.
				if err := os.Mkdir(remote+".part", 0o700); err != nil {
					t.Fatal(err)
				}
				if _, errOut, code = run(stream, size, want); code == 0 {
					t.Errorf("an unwritable .part was accepted: %q", errOut)
				}
				os.Remove(remote + ".part")
				gone("unwritable .part")
			})
		}
	}
}

// Push over a real sshd, as root and through sudo: the file arrives with
// mode 0600 and its sum; a wrong sum is a DamagedError naming the host and
// both sums with nothing kept; a cancelled push leaves no file.
func TestPushOverSSH(t *testing.T) {
	srv, opts := e2eServer(t)
	local, sum := randomFile(t, 9<<20+777)
	ctx := context.Background()
	users := []struct{ name, user string }{{"root", "root"}}
	if user := maybeSudoUser(t, srv); user != "" {
		users = append(users, struct{ name, user string }{"sudo user", user})
	}
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			c := dialT(t, srv.Host(u.user), opts)
			remote := filepath.Join(remoteDir(t), "it's a snapshot.db")
			if err := os.WriteFile(remote, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			var last int64
			p, err := Push(ctx, c, local, remote, 0o600, sum, func(n int64) { last = n })
			if err != nil {
				t.Fatal(err)
			}
			if p.SHA256 != sum || p.Size != 9<<20+777 || p.Wire != p.Size || last != p.Size {
				t.Errorf("pushed %+v, progress ended at %d; want sum %s", p, last, sum)
			}
			a, _ := os.ReadFile(local)
			b, _ := os.ReadFile(remote)
			if !bytes.Equal(a, b) {
				t.Errorf("the host holds %d bytes that differ from the %d sent", len(b), len(a))
			}
			st, err := os.Stat(remote)
			if err != nil || st.Mode().Perm() != 0o600 || fileOwner(st) != 0 {
				t.Errorf("remote file %v (%v), want 0600 owned by root", st.Mode(), err)
			}
		})
	}

	c := dialT(t, srv.Host("root"), opts)
	t.Run("a wrong sum names the host and both sums, keeps nothing", func(t *testing.T) {
		remote := filepath.Join(remoteDir(t), "snap.db")
		bad := strings.Repeat("ab", 32)
		_, err := Push(ctx, c, local, remote, 0o600, bad, nil)
		var de *DamagedError
		if !errors.As(err, &de) || de.HostSum != sum || de.Bastion != bad || de.Host != c.Host().Name {
			t.Fatalf("got %v, want a DamagedError with sums %s / %s", err, sum, bad)
		}
		if msg := err.Error(); !strings.Contains(msg, c.Host().Name) || !strings.Contains(msg, sum) || !strings.Contains(msg, bad) {
			t.Errorf("error %q should name the host and both sums", msg)
		}
		for _, p := range []string{remote, remote + ".part"} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s exists after a damaged push", p)
			}
		}
	})
	t.Run("a host that cannot write says why", func(t *testing.T) {
		_, err := Push(ctx, c, local, "/nonexistent/dir/x.db", 0o600, sum, nil)
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/dir/x.db") || !strings.Contains(err.Error(), c.Host().Name) {
			t.Errorf("got %v, want the host's reason naming the path and the host", err)
		}
	})
	t.Run("cancel mid-push leaves no file", func(t *testing.T) {
		remote := filepath.Join(remoteDir(t), "cancelled.db")
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := Push(cctx, c, local, remote, 0o600, sum, func(n int64) {
			if n > 1<<20 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if _, err := os.Stat(remote); !os.IsNotExist(err) {
			t.Errorf("%s exists after a cancelled push", remote)
		}
		// The host's shell removes its .part once the cut stream ends it;
		// give it a moment (it is not ours to wait on).
		waitGone(t, remote+".part")
	})
}

// waitGone waits up to 10 s for p to disappear.
func waitGone(t *testing.T, p string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			return
		}
	}
	t.Errorf("%s still there 10s after the push ended", p)
}

// GzipFanout over a real sshd: hosts that join together share one round
// (each gets the file at its own path, checked); with fewer hosts than
// expected the round starts after the window; a host joining later gets a
// round of its own.
func TestGzipFanoutOverSSH(t *testing.T) {
	srv, opts := e2eServer(t)
	data, want := streamData()
	local := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(local, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conns := []Conn{dialT(t, srv.Host("root"), opts), dialT(t, srv.Host("root"), opts), dialT(t, srv.Host("root"), opts)}
	dir := remoteDir(t)
	check := func(r StreamResult, remote string) {
		t.Helper()
		if r.Err != nil {
			t.Fatalf("%s: %v", remote, r.Err)
		}
		got, err := os.ReadFile(remote)
		if err != nil || !bytes.Equal(got, data) || r.SHA256 != want {
			t.Fatalf("%s differs from the source (%v)", remote, err)
		}
		if st, _ := os.Stat(remote); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", remote, st.Mode().Perm())
		}
		if r.Wire <= 0 || r.Wire >= r.Raw {
			t.Errorf("%s: %d bytes on the wire for %d: not compressed", remote, r.Wire, r.Raw)
		}
	}

	f := NewGzipFanout(local, 0o600, want, 2, time.Hour) // only a full round can start
	var wg sync.WaitGroup
	res := make([]StreamResult, 2)
	seen := make([]int64, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = f.Join(ctx, conns[i], filepath.Join(dir, fmt.Sprintf("a%d.db", i)), func(n int64) { seen[i] = n })
		}()
	}
	wg.Wait()
	for i := range 2 {
		check(res[i], filepath.Join(dir, fmt.Sprintf("a%d.db", i)))
		if seen[i] != int64(len(data)) {
			t.Errorf("host %d: progress ended at %d of %d", i, seen[i], len(data))
		}
	}

	// Three expected, two come: the window starts them; the third, late,
	// gets a round of its own.
	f = NewGzipFanout(local, 0o600, want, 3, 300*time.Millisecond)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = f.Join(ctx, conns[i], filepath.Join(dir, fmt.Sprintf("b%d.db", i)), nil)
		}()
	}
	wg.Wait()
	for i := range 2 {
		check(res[i], filepath.Join(dir, fmt.Sprintf("b%d.db", i)))
	}
	check(f.Join(ctx, conns[2], filepath.Join(dir, "late.db"), nil), filepath.Join(dir, "late.db"))

	// A wrong sum: every host says so, none keeps a file.
	bad := strings.Repeat("0", 64)
	f = NewGzipFanout(local, 0o600, bad, 1, time.Hour)
	r := f.Join(ctx, conns[0], filepath.Join(dir, "bad.db"), nil)
	if r.Err == nil || !strings.Contains(r.Err.Error(), want) || !strings.Contains(r.Err.Error(), bad) {
		t.Errorf("a wrong sum: %v, want an error with both sums", r.Err)
	}
	for _, p := range []string{"bad.db", "bad.db.part"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s kept after a wrong sum", p)
		}
	}
}
