package runlock

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// deadPID is a pid that existed and is gone: a finished child's.
func deadPID(t *testing.T) int {
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

func TestFileLockRefusesSecondHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	first, err := Acquire(p, NewHolder("restore", "k8s-01", "run-1"), false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode: %v %v", fi, err)
	}
	_, err = Acquire(p, NewHolder("backup", "k8s-01", "run-2"), true)
	var held *HeldError
	if !errors.As(err, &held) || held.Stale || held.Holder.RunID != "run-1" {
		t.Fatalf("second acquire: want a live HeldError naming run-1, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"run run-1", "`ezrestore restore`", "pid", "since", "wait for it to end"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	// --break-lock does not take a live lock.
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("lock file still there after release: %v", err)
	}
	again, err := Acquire(p, NewHolder("restore", "k8s-01", "run-3"), false)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again.Release()
}

func TestFileLockStale(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	dead := NewHolder("restore", "k8s-01", "run-dead")
	dead.PID = deadPID(t)
	if err := os.WriteFile(p, dead.marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(p, NewHolder("restore", "k8s-01", "run-2"), false)
	var held *HeldError
	if !errors.As(err, &held) || !held.Stale || !strings.Contains(err.Error(), "--break-lock") || !strings.Contains(err.Error(), "is gone") {
		t.Fatalf("want a stale HeldError with the --break-lock hint, got %v", err)
	}
	l, err := Acquire(p, NewHolder("restore", "k8s-01", "run-2"), true)
	if err != nil {
		t.Fatal(err)
	}
	if l.Holder.Broke == nil || l.Holder.Broke.RunID != "run-dead" {
		t.Fatalf("take-over does not name the previous holder: %+v", l.Holder.Broke)
	}
	b, _ := os.ReadFile(p)
	if h := parse(b); h == nil || h.RunID != "run-2" || h.Broke == nil {
		t.Fatalf("lock file after take-over: %s", b)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}

	// A holder on another bastion is judged by its heartbeat.
	other := NewHolder("restore", "k8s-01", "run-far")
	other.Host = "another-bastion"
	other.Heartbeat = time.Now().Add(-2 * StaleAfter)
	os.WriteFile(p, other.marshal(), 0o600)
	if h := Peek(p); h == nil || !h.Stale || !strings.Contains(h.Why, "heartbeat") {
		t.Fatalf("old heartbeat not judged stale: %+v", h)
	}
	other.Heartbeat = time.Now()
	os.WriteFile(p, other.marshal(), 0o600)
	if h := Peek(p); h == nil || h.Stale {
		t.Fatalf("fresh heartbeat of another bastion judged stale: %+v", h)
	}
}

func TestFileLockTakenOverIsReported(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	l, err := Acquire(p, NewHolder("restore", "k8s-01", "run-1"), false)
	if err != nil {
		t.Fatal(err)
	}
	l.Update(func(h *Holder) { h.RunID = "run-1b" })
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "run-1b") {
		t.Fatalf("update not written: %s", b)
	}
	thief := NewHolder("restore", "k8s-01", "run-thief")
	os.WriteFile(p, thief.marshal(), 0o600)
	err = l.Release()
	if err == nil || !strings.Contains(err.Error(), "taken over") {
		t.Fatalf("release of a taken-over lock: %v", err)
	}
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "run-thief") {
		t.Fatalf("release removed another run's lock: %s", b)
	}
}

// shConn runs commands with the local sh: the lock scripts for real, as a
// host's shell would run them.
type shConn struct{ name string }

func (c shConn) Host() *inventory.Host { return &inventory.Host{Name: c.name} }
func (c shConn) Run(ctx context.Context, cmd string) (transport.Result, error) {
	var out, errb bytes.Buffer
	x := exec.CommandContext(ctx, "sh", "-c", cmd)
	x.Stdout, x.Stderr = &out, &errb
	err := x.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return transport.Result{Stdout: out.Bytes(), Stderr: errb.Bytes(), ExitCode: ee.ExitCode()}, nil
	}
	return transport.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}, err
}
func (shConn) Upload(context.Context, string, string, os.FileMode, func(int64)) error { return nil }
func (shConn) Download(context.Context, string, string, func(int64)) error            { return nil }
func (shConn) Close() error                                                           { return nil }

// deadConn is a host whose connection broke.
type deadConn struct{ shConn }

func (deadConn) Run(context.Context, string) (transport.Result, error) {
	return transport.Result{}, errors.New("connection lost")
}

func TestHostLocks(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	pa, pb := filepath.Join(dir, "a", "lock"), filepath.Join(dir, "b", "lock")
	// Two hosts, each its own lock path (the same path on real hosts).
	a := []transport.Conn{shConn{"a"}}
	b := []transport.Conn{shConn{"b"}}
	la, err := AcquireHosts(ctx, a, pa, NewHolder("restore", "c", "run-1"), false, 2)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(pa); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("remote lock file: %v %v", fi, err)
	}
	_, err = AcquireHosts(ctx, a, pa, NewHolder("restore", "c", "run-2"), true, 2)
	var held *HeldError
	if !errors.As(err, &held) || held.Stale || held.Holder.RunID != "run-1" || !strings.Contains(err.Error(), "host a") {
		t.Fatalf("second lock on host a: %v", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pa); !os.IsNotExist(err) {
		t.Fatalf("lock on a left after release: %v", err)
	}
	// A run that gets a but cannot lock another host holds nothing afterwards.
	_, err = AcquireHosts(ctx, append(a, deadConn{shConn{"down"}}), pa, NewHolder("restore", "c", "run-2"), false, 2)
	if err == nil || !strings.Contains(err.Error(), "host down") {
		t.Fatalf("lock with an unreachable host: %v", err)
	}
	if _, err := os.Stat(pa); !os.IsNotExist(err) {
		t.Fatalf("lock on a kept after a failed acquire: %v", err)
	}

	// A dead holder of this bastion: refused as stale, taken over with break.
	dead := NewHolder("restore", "c", "run-dead")
	dead.PID = deadPID(t)
	os.MkdirAll(filepath.Dir(pb), 0o700)
	os.WriteFile(pb, append(dead.marshal(), '\n'), 0o600)
	_, err = AcquireHosts(ctx, b, pb, NewHolder("rollback", "c", "run-3"), false, 2)
	if !errors.As(err, &held) || !held.Stale {
		t.Fatalf("dead holder not stale: %v", err)
	}
	lb, err := AcquireHosts(ctx, b, pb, NewHolder("rollback", "c", "run-3"), true, 2)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Broke["b"] == nil || lb.Broke["b"].RunID != "run-dead" {
		t.Fatalf("take-over not reported: %+v", lb.Broke)
	}
	lb.refresh()
	if got, _ := os.ReadFile(pb); !strings.Contains(string(got), "run-3") {
		t.Fatalf("after refresh: %s", got)
	}
	// Another run takes the file meanwhile: release leaves it and says so.
	thief := NewHolder("restore", "c", "run-thief")
	os.WriteFile(pb, thief.marshal(), 0o600)
	if err := lb.Release(ctx); err == nil || !strings.Contains(err.Error(), "taken over") {
		t.Fatalf("release after a take-over: %v", err)
	}
	if got, _ := os.ReadFile(pb); !strings.Contains(string(got), "run-thief") {
		t.Fatalf("release removed another run's lock: %s", got)
	}
}

func TestHostLockValuesAreQuoted(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "it's here", "lock")
	h := NewHolder("restore", "c'; touch "+filepath.Join(dir, "pwned")+"; '", "run-1")
	l, err := AcquireHosts(context.Background(), []transport.Conn{shConn{"x"}}, p, h, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("a value reached the shell unquoted")
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}
