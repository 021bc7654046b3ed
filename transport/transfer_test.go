package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ezrestore/ezrestore/internal/testkit/sshtest"
)

// randomFile writes size random bytes to a new file and returns its path and sha256.
func randomFile(t testing.TB, size int) (string, string) {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "snapshot.db")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return p, hex.EncodeToString(sum[:])
}

// remoteDir makes a directory for uploads; the sshd runs on this machine, so
// the test can look at the files directly too.
func remoteDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSSHTransfer(t *testing.T) {
	srv, opts := e2eServer(t)
	local, sum := randomFile(t, 9<<20+12345) // not a multiple of any packet size
	ctx := context.Background()

	users := []struct{ name, user string }{{"root", "root"}}
	if user := maybeSudoUser(t, srv); user != "" {
		users = append(users, struct{ name, user string }{"sudo user", user})
	}
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			c := dialT(t, srv.Host(u.user), opts)
			dir := remoteDir(t)
			remote := filepath.Join(dir, "it's a snapshot.db")
			// An older file of the same name is replaced whole.
			if err := os.WriteFile(remote, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			var last int64
			if err := c.Upload(ctx, local, remote, 0o600, func(n int64) { last = n }); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(local)
			if err != nil {
				t.Fatal(err)
			}
			if last != st.Size() {
				t.Errorf("progress ended at %d, file has %d bytes", last, st.Size())
			}
			rst, err := os.Stat(remote)
			if err != nil {
				t.Fatal(err)
			}
			if rst.Mode().Perm() != 0o600 {
				t.Errorf("remote mode %v, want 0600", rst.Mode().Perm())
			}
			if owner := fileOwner(rst); owner != 0 {
				t.Errorf("remote file owned by uid %d, want root", owner)
			}
			if _, err := os.Stat(remote + ".part"); !os.IsNotExist(err) {
				t.Errorf(".part left behind: %v", err)
			}
			got, err := RemoteSha256(ctx, c, remote)
			if err != nil || got != sum {
				t.Errorf("RemoteSha256 = %s, %v; want %s", got, err, sum)
			}

			back := filepath.Join(t.TempDir(), "back.db")
			last = 0
			if err := c.Download(ctx, remote, back, func(n int64) { last = n }); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(local)
			b, _ := os.ReadFile(back)
			if !bytes.Equal(a, b) {
				t.Errorf("download differs from upload (%d vs %d bytes)", len(b), len(a))
			}
			if bst, _ := os.Stat(back); bst.Mode().Perm() != 0o600 {
				t.Errorf("downloaded mode %v, want 0600", bst.Mode().Perm())
			}
			if last != int64(len(a)) {
				t.Errorf("download progress ended at %d", last)
			}
			if _, err := os.Stat(back + ".part"); !os.IsNotExist(err) {
				t.Errorf("local .part left behind")
			}
		})
	}

	t.Run("cancel mid-upload leaves no file", func(t *testing.T) {
		c := dialT(t, srv.Host("root"), opts)
		remote := filepath.Join(remoteDir(t), "cancelled.db")
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var last int64
		err := c.Upload(cctx, local, remote, 0o600, func(n int64) {
			last = n
			if n > 1<<20 {
				cancel()
			}
		})
		if err != context.Canceled {
			t.Errorf("got %v, want context.Canceled", err)
		}
		// Stopped where it was cancelled, not after sending the rest
		// (no clock: a loaded machine makes any bound a guess).
		if fi, err := os.Stat(local); err != nil || last >= fi.Size() {
			t.Errorf("the cancelled upload went on to the end (%d bytes sent; %v)", last, err)
		}
		for _, p := range []string{remote, remote + ".part"} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s exists after a cancelled upload", p)
			}
		}
	})

	t.Run("errors name the path", func(t *testing.T) {
		c := dialT(t, srv.Host("root"), opts)
		err := c.Upload(ctx, local, "/nonexistent/dir/x.db", 0o600, nil)
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/dir/x.db") {
			t.Errorf("got %v", err)
		}
		err = c.Download(ctx, "/nonexistent/x.db", filepath.Join(t.TempDir(), "x"), nil)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("download of a missing file: got %v, want not-exist", err)
		}
		if _, err := RemoteSha256(ctx, c, "/nonexistent/x.db"); err == nil {
			t.Error("RemoteSha256 of a missing file succeeded")
		}
	})
}

// maybeSudoUser creates a passwordless-sudo login when the machine has sudo.
func maybeSudoUser(t *testing.T, srv *sshtest.Server) string {
	t.Helper()
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Log("sudo is not installed: transfers through sudo are not tested (scripts/deps.sh installs it)")
		return ""
	}
	return srv.AddUser(t, true)
}

func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
