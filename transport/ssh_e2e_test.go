package transport

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ezrestore/ezrestore/internal/testkit/sshtest"
	"github.com/ezrestore/ezrestore/inventory"
)

// e2eServer starts a private sshd and returns it with options that trust it.
func e2eServer(t *testing.T) (*sshtest.Server, Options) {
	t.Helper()
	sshtest.Require(t)
	t.Setenv("HOME", t.TempDir()) // no stray ~/.ssh keys or known_hosts
	srv := sshtest.Start(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	srv.WriteKnownHosts(t, kh)
	return srv, Options{KnownHostsFiles: []string{kh}, IdentityFiles: []string{srv.ClientKeyFile}, NoAgent: true}
}

func dialT(t *testing.T, h *inventory.Host, opts Options) Conn {
	t.Helper()
	c, err := Dial(context.Background(), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSSHHostKeys(t *testing.T) {
	srv, opts := e2eServer(t)
	h := srv.Host("root")

	t.Run("known host accepted", func(t *testing.T) {
		c := dialT(t, h, opts)
		res, err := c.Run(context.Background(), "echo ok")
		if err != nil || string(res.Stdout) != "ok\n" {
			t.Fatalf("Run = %q, %v", res.Stdout, err)
		}
	})

	t.Run("unknown host refused with a way to add it", func(t *testing.T) {
		o := opts
		o.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "known_hosts")}
		_, err := Dial(context.Background(), h, o)
		if err == nil {
			t.Fatal("unknown host accepted without --accept-new-host-keys")
		}
		for _, want := range []string{"ssh root@127.0.0.1:", "not known", "ssh-keyscan -p ", "--accept-new-host-keys"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
	})

	t.Run("accept-new records the key, then strict works", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "cluster", "ssh", "known_hosts")
		o := opts
		o.KnownHostsFiles = []string{kh, filepath.Join(t.TempDir(), "absent")}
		o.AcceptNewHostKeys = true
		c, err := Dial(context.Background(), h, o)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		b, err := os.ReadFile(kh)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) != srv.KnownHostsLine {
			t.Errorf("recorded %q, want %q", b, srv.KnownHostsLine)
		}
		if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
			t.Errorf("known_hosts mode %v", st.Mode().Perm())
		}
		o.AcceptNewHostKeys = false
		dialT(t, h, o)
	})

	t.Run("changed key refused even with accept-new", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		wrong, _ := newTestKey(t)
		line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, wrong.PublicKey())
		if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		o := opts
		o.KnownHostsFiles = []string{kh}
		o.AcceptNewHostKeys = true
		_, err := Dial(context.Background(), h, o)
		if err == nil {
			t.Fatal("changed host key accepted")
		}
		for _, want := range []string{"HOST KEY CHANGED", kh + " line 1", "ssh-keygen -R"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
		if b, _ := os.ReadFile(kh); string(b) != line+"\n" {
			t.Errorf("known_hosts changed:\n%s", b)
		}
	})

	t.Run("recorded key of a type the host lacks is a change", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		// An RSA key recorded; the server only has ed25519.
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rsaPub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		rsaLine := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, rsaPub)
		if err := os.WriteFile(kh, []byte(rsaLine+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		o := opts
		o.KnownHostsFiles = []string{kh}
		o.AcceptNewHostKeys = true
		_, err = Dial(context.Background(), h, o)
		if err == nil || !strings.Contains(err.Error(), "HOST KEY CHANGED") || !strings.Contains(err.Error(), kh+" line 1") {
			t.Fatalf("got %v, want a changed-key refusal", err)
		}
	})
}

func TestSSHRun(t *testing.T) {
	srv, opts := e2eServer(t)
	c := dialT(t, srv.Host("root"), opts)
	ctx := context.Background()

	tests := []struct {
		cmd            string
		stdout, stderr string
		code           int
	}{
		{"echo out; echo err >&2", "out\n", "err\n", 0},
		{"exit 3", "", "", 3},
		{"printf %s " + Quote("it's $HOME `x`"), "it's $HOME `x`", "", 0},
		{"id -u", "0\n", "", 0},
		{"kill -TERM $$", "", "", 128 + 15},
		{"/nonexistent/cmd", "", "", 127},
	}
	for _, tt := range tests {
		res, err := c.Run(ctx, tt.cmd)
		if err != nil {
			t.Errorf("%s: %v", tt.cmd, err)
			continue
		}
		if res.ExitCode != tt.code || string(res.Stdout) != tt.stdout || (tt.code != 127 && string(res.Stderr) != tt.stderr) {
			t.Errorf("%s: got exit %d stdout %q stderr %q, want %d %q %q", tt.cmd, res.ExitCode, res.Stdout, res.Stderr, tt.code, tt.stdout, tt.stderr)
		}
	}

	// One connection, many sessions at once.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(ctx, "sleep 0.2; echo hi")
			if err == nil && string(res.Stdout) != "hi\n" {
				err = errors.New("unexpected output " + string(res.Stdout))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Run: %v", err)
	}
}

func TestSSHTimeoutAndCancel(t *testing.T) {
	srv, opts := e2eServer(t)
	opts.CommandTimeout = 500 * time.Millisecond
	c := dialT(t, srv.Host("root"), opts)

	// "sleep 30" that were let run would end without an error: the errors
	// alone tell that the timeout and the cancel cut it, no clock needed.
	_, err := c.Run(context.Background(), "sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 500ms") {
		t.Errorf("timeout: got %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	opts.CommandTimeout = 0
	c2 := dialT(t, srv.Host("root"), opts)
	_, err = c2.Run(ctx, "sleep 30")
	if err != context.Canceled {
		t.Errorf("cancel: got %v, want context.Canceled itself", err)
	}
	// The connection is still good after an aborted command.
	if res, err := c2.Run(context.Background(), "echo again"); err != nil || string(res.Stdout) != "again\n" {
		t.Errorf("Run after cancel = %q, %v", res.Stdout, err)
	}
}

func TestSSHPool(t *testing.T) {
	srv, opts := e2eServer(t)
	good := srv.Host("root")
	good.Name = "etcd1"
	dead := &inventory.Host{Name: "node9", Address: "127.0.0.1", Port: 1, User: "root"}
	p := Connect(context.Background(), []*inventory.Host{good, dead}, opts, 2)
	defer p.Close()
	var de *DialError
	if err := p.Failed()["node9"]; !errors.As(err, &de) || de.Host != "node9" || !strings.Contains(err.Error(), "ssh root@127.0.0.1:1: ") {
		t.Errorf("Failed()[node9] = %v, want a DialError for root@127.0.0.1:1", err)
	}
	c, ok := p.Get("etcd1")
	if !ok {
		t.Fatalf("no connection to the reachable host; failed: %v", p.Failed())
	}
	if res, err := c.Run(context.Background(), "echo pooled"); err != nil || string(res.Stdout) != "pooled\n" {
		t.Errorf("Run = %q, %v", res.Stdout, err)
	}
	if _, ok := p.Failed()["node9"]; !ok {
		t.Errorf("Failed() = %v", p.Failed())
	}
}

func TestSSHBecome(t *testing.T) {
	srv, opts := e2eServer(t)

	t.Run("passwordless sudo runs as root", func(t *testing.T) {
		user := srv.AddUser(t, true)
		c := dialT(t, srv.Host(user), opts)
		res, err := c.Run(context.Background(), "id -un; echo \"$0\"")
		if err != nil || !strings.HasPrefix(string(res.Stdout), "root\n") {
			t.Fatalf("Run = %q %q, %v", res.Stdout, res.Stderr, err)
		}
		h := srv.Host(user)
		h.Become, h.BecomeUser = true, user
		c2 := dialT(t, h, opts)
		res, err = c2.Run(context.Background(), "id -un")
		if err != nil || string(res.Stdout) != user+"\n" {
			t.Errorf("become_user: Run = %q %q, %v", res.Stdout, res.Stderr, err)
		}
	})

	t.Run("sudo that wants a password is a clear error", func(t *testing.T) {
		user := srv.AddUser(t, false)
		_, err := Dial(context.Background(), srv.Host(user), opts)
		if !errors.Is(err, ErrSudoPassword) || !strings.Contains(err.Error(), "passwordless sudo") || !strings.Contains(err.Error(), "ssh "+user+"@") {
			t.Errorf("got %v, want ErrSudoPassword naming the host", err)
		}
	})
}

// A host whose sshd session process stopped answering (the TCP connection
// stays up: nothing closes it) does not hang a command: opening its session
// waits beside the context, as the command itself does.
func TestRunReturnsWhenTheSessionIsNeverOpened(t *testing.T) {
	srv, opts := e2eServer(t)
	c := dialT(t, srv.Host("root"), opts)
	if _, err := c.Run(context.Background(), "true"); err != nil {
		t.Fatal(err)
	}
	// Freeze every process under the listener (the connection's monitor
	// and its session process), never the listener itself.
	out, err := exec.Command("sh", "-c", fmt.Sprintf(`d() { for c in $(pgrep -P "$1"); do echo "$c"; d "$c"; done; }; d %d`, srv.PID())).Output()
	pids := strings.Fields(string(out))
	if err != nil || len(pids) == 0 {
		t.Fatalf("no process of the connection under sshd %d: %v", srv.PID(), err)
	}
	for _, p := range pids {
		exec.Command("kill", "-STOP", p).Run()
	}
	t.Cleanup(func() {
		for _, p := range pids {
			exec.Command("kill", "-CONT", p).Run()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t0 := time.Now()
	_, err = c.Run(ctx, "true")
	// Unfixed, Run waits for the keepalive to give up (30 s at the least);
	// fixed it returns at the 1 s deadline. 20 s tells them apart on the
	// busiest machine.
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 20*time.Second {
		t.Fatalf("Run on a host that never answers: %v after %v, want the context's deadline within seconds", err, time.Since(t0))
	}
}
