package restore_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// row logs one line of the fault matrix for the closing note: the fault, the
// exit code, the first line of the message, data lost, final state.
func row(t *testing.T, fault string, err error, out, final string) {
	t.Helper()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	first := strings.SplitN(strings.TrimPrefix(errorBlock(out), "ezrestore: "), "\n", 2)[0]
	t.Logf("MATRIX | %s | %d | %s | none | %s |", fault, code, first, final)
}

// slowSFTP makes the host's side of a push wait 3 s before it takes any
// byte (python3 or tee, which the one-pass push feeds, and the sftp-server of other
// transfers), so a fault can be caused while "push snapshot" is under way,
// every time.
func slowSFTP(t *testing.T, l *lab.Lab, addr string) {
	t.Helper()
	const tools = "/usr/lib/openssh/sftp-server /usr/bin/tee /usr/bin/python3"
	sh(t, l, addr, `for s in `+tools+`; do [ -e $s.real ] || mv $s $s.real; printf '#!/bin/sh\nsleep 3\nexec %s.real "$@"\n' $s > $s; chmod 755 $s; done`)
	t.Cleanup(func() {
		l.Exec(context.Background(), addr, "for s in "+tools+"; do [ -e $s.real ] && mv $s.real $s; done")
	})
}

// background starts the binary as an operator would, with its output kept.
type background struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func start(t *testing.T, l *lab.Lab, args ...string) *background {
	t.Helper()
	b := &background{cmd: exec.Command(binary, append([]string{"--base", l.Opts.Base}, args...)...)}
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *background) wait(t *testing.T) (string, error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		t.Logf("$ ezrestore %s\n%s", strings.Join(b.cmd.Args[1:], " "), b.out.String())
		return b.out.String(), err
	case <-time.After(5 * time.Minute):
		b.cmd.Process.Kill()
		t.Fatalf("ezrestore did not end:\n%s", b.out.String())
		return "", nil
	}
}

// runs lists the run records of the lab's cluster.
func runs(l *lab.Lab) map[string]bool {
	m := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(l.Dir.Path, "restores"))
	for _, e := range entries {
		m[e.Name()] = true
	}
	return m
}

// waitStep waits until a run not in before shows step started.
func waitStep(t *testing.T, l *lab.Lab, before map[string]bool, step string) {
	t.Helper()
	waitEvent(t, l, before, step, "start")
}

// waitEvent waits until a run not in before has the event status of step
// in its record ("start", "end:ok").
func waitEvent(t *testing.T, l *lab.Lab, before map[string]bool, step, status string) {
	t.Helper()
	dir := filepath.Join(l.Dir.Path, "restores")
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var fresh []string
		for r := range runs(l) {
			if !before[r] {
				fresh = append(fresh, r)
			}
		}
		sort.Strings(fresh)
		if len(fresh) > 0 {
			ev, _ := os.ReadFile(filepath.Join(dir, fresh[len(fresh)-1], "events.jsonl"))
			if strings.Contains(string(ev), `"step":"`+step+`","status":"`+status+`"`) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("step %q never reached %q", step, status)
}

// copyCluster copies the lab's cluster dir to a new base as an operator's
// own copy: the lab's OpenSSH options dropped from the hosts file, edit
// applied to it, and the known_hosts given.
func copyCluster(t *testing.T, l *lab.Lab, edit func(hosts string) string, knownHosts []byte) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "clusters", l.Opts.Name)
	hosts, err := os.ReadFile(l.Dir.Hosts())
	if err != nil {
		t.Fatal(err)
	}
	h := regexp.MustCompile(`(?m)^ansible_ssh_common_args=.*\n`).ReplaceAllString(string(hosts), "")
	config, _ := os.ReadFile(l.Dir.Config())
	key, _ := os.ReadFile(l.Dir.PrivateKey())
	for p, data := range map[string][]byte{
		"hosts": []byte(edit(h)), "config.yml": config, "ssh/known_hosts": knownHosts, "ssh/id_ed25519": key,
	} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

func requireKeysBack(t *testing.T, l *lab.Lab) {
	t.Helper()
	requireHealthy(t, l)
	for _, h := range l.EtcdHosts() {
		if k := keys(t, l, h.Address); !strings.Contains(k, "net-test3") {
			t.Fatalf("%s lacks the snapshot's keys: %s", h.Address, k)
		}
	}
}

// The rest of the fault matrix on one lab, one fault after another; each
// ends with the cluster restored by the advised next command.
func TestFaultMatrix(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "e2e-matrix", Nodes: 1})
	ctx := context.Background()
	etcd := l.EtcdHosts()
	seedKeys(t, l)
	snap := saveSnapshot(t, l, "matrix.db")
	name := l.Opts.Name
	restoreArgs := []string{"restore", name, "--snapshot", snap, "--yes"}

	t.Run("SSH lost mid-push", func(t *testing.T) {
		victim := etcd[1].Address
		slowSFTP(t, l, victim)
		before := runs(l)
		run := start(t, l, restoreArgs...)
		// The push (slowed) runs beside the stops: the fault comes once
		// they are over, while the push alone is under way.
		waitStep(t, l, before, "push snapshot")
		waitEvent(t, l, before, "stop etcd", "end:ok")
		// Every SSH session on the host ends, ours among them.
		l.Exec(ctx, victim, "pkill -f 'sshd: root@' || true")
		out, err := run.wait(t)
		if err == nil {
			t.Fatal("the restore went on without its connection to " + victim)
		}
		requireAll(t, "the failure", errorBlock(out), `step "push snapshot" failed on host `+victim,
			"The old etcd data is still in place", "--from-step 'push snapshot'")
		// The lock on that host could not be removed over the lost
		// connection: the run says so, and the resume takes it over.
		requireAll(t, "the warning", out, "run lock not released", "--break-lock")
		row(t, "SSH lost mid-push", err, out, "healthy after --from-step 'push snapshot' --break-lock")
		if out, err := cli(t, l, append(restoreArgs, "--from-step", "push snapshot", "--break-lock")...); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		requireKeysBack(t, l)
	})

	t.Run("a member powered off mid-push and booted again, then the advised resume", func(t *testing.T) {
		victim := etcd[2].Address
		slowSFTP(t, l, victim)
		before := runs(l)
		run := start(t, l, restoreArgs...)
		waitStep(t, l, before, "push snapshot")
		waitEvent(t, l, before, "stop etcd", "end:ok")
		if err := l.Kill(ctx, victim); err != nil {
			t.Fatal(err)
		}
		out, err := run.wait(t)
		if err == nil {
			t.Fatal("the restore went on with " + victim + " powered off")
		}
		requireAll(t, "the failure", errorBlock(out), `step "push snapshot" failed on host `+victim, "--from-step 'push snapshot'")
		row(t, "member powered off mid-push", err, out, "healthy after power-on and --from-step 'push snapshot' --break-lock")
		if err := l.Start(ctx, victim); err != nil {
			t.Fatal(err)
		}
		// Its etcd came back with the host, on the old data; the resume
		// (the push, then the stops beside it) stops it and sets that data
		// aside before the swap.
		asideBefore := setAside(t, l, victim)
		if out, err := cli(t, l, append(restoreArgs, "--from-step", "push snapshot", "--break-lock")...); err != nil {
			t.Fatalf("resume after the reboot: %v\n%s", err, out)
		}
		if got := setAside(t, l, victim); got != asideBefore+1 {
			t.Errorf("%s: %d set-aside dirs, want %d: the data its etcd ran on after the reboot must be set aside", victim, got, asideBefore+1)
		}
		requireKeysBack(t, l)
	})

	// interrupt sends Ctrl-C while step during is under way and returns the
	// step the advice resumes from, which must be one of next (a step in the
	// background runs beside others: where the run stands when the signal
	// lands depends on which of them is under way).
	interrupt := func(t *testing.T, during string, next []string, prepare func()) string {
		if prepare != nil {
			prepare()
		}
		before := runs(l)
		run := start(t, l, restoreArgs...)
		waitStep(t, l, before, during)
		time.Sleep(200 * time.Millisecond)
		run.cmd.Process.Signal(syscall.SIGINT)
		out, err := run.wait(t)
		if err == nil {
			t.Fatalf("Ctrl-C during %q: the restore ended well", during)
		}
		requireAll(t, "the interrupted run", errorBlock(out), "interrupted", "Where the cluster stands")
		m := regexp.MustCompile(`--from-step '([^']+)'`).FindStringSubmatch(errorBlock(out))
		if m == nil || !slices.Contains(next, m[1]) {
			t.Fatalf("Ctrl-C during %q: the advice should resume from one of %q:\n%s", during, next, errorBlock(out))
		}
		row(t, "Ctrl-C during "+during, err, out, "healthy after --from-step '"+m[1]+"'")
		return m[1]
	}

	t.Run("Ctrl-C during stop etcd", func(t *testing.T) {
		// The stop takes well under a second; a slow unit stop on one host
		// keeps the step under way when the interrupt comes.
		slow := etcd[0].Address
		// The push, in the background beside the stops, has finished when
		// the run stops: the restore is next.
		next := interrupt(t, "stop etcd", []string{"restore snapshot"}, func() {
			sh(t, l, slow, "mkdir -p /etc/systemd/system/etcd.service.d && printf '[Service]\\nExecStopPost=/bin/sleep 3\\n' > /etc/systemd/system/etcd.service.d/zz-slowstop.conf && systemctl daemon-reload")
		})
		sh(t, l, slow, "rm /etc/systemd/system/etcd.service.d/zz-slowstop.conf && systemctl daemon-reload")
		for _, h := range etcd {
			if st := sh(t, l, h.Address, "systemctl is-active etcd || true"); st != "inactive" && st != "failed" {
				t.Errorf("%s: the stop step did not finish: etcd is %s", h.Address, st)
			}
		}
		if out, err := cli(t, l, append(restoreArgs, "--from-step", next)...); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		requireKeysBack(t, l)
	})

	t.Run("Ctrl-C during push", func(t *testing.T) {
		// The slowed push is still under way when the stops beside it end:
		// it finishes (a step under way always does), and the run stops
		// before the next step of the main line.
		next := interrupt(t, "push snapshot", []string{"stop etcd", "restore snapshot"}, func() { slowSFTP(t, l, etcd[0].Address) })
		if out, err := cli(t, l, append(restoreArgs, "--from-step", next)...); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		requireKeysBack(t, l)
	})

	t.Run("Ctrl-C during the health wait", func(t *testing.T) {
		slow := etcd[0].Address
		interrupt(t, "wait for etcd health", []string{"wait for etcd health"}, func() {
			sh(t, l, slow, "mkdir -p /etc/systemd/system/etcd.service.d && printf '[Service]\\nExecStartPre=/bin/sleep 8\\n' > /etc/systemd/system/etcd.service.d/zz-slow.conf && systemctl daemon-reload")
		})
		sh(t, l, slow, "rm /etc/systemd/system/etcd.service.d/zz-slow.conf && systemctl daemon-reload")
		if out, err := cli(t, l, append(restoreArgs, "--from-step", "wait for etcd health")...); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		requireKeysBack(t, l)
	})

	t.Run("an etcd host off between plan and restore", func(t *testing.T) {
		off := etcd[2].Address
		if out, err := cli(t, l, "plan", name, "--snapshot", snap); err != nil {
			t.Fatalf("plan: %v\n%s", err, out)
		}
		if err := l.Kill(ctx, off); err != nil {
			t.Fatal(err)
		}
		before := map[string]string{}
		for _, h := range etcd[:2] {
			before[h.Address] = hostState(t, l, h.Address)
		}
		out, err := cli(t, l, restoreArgs...)
		if err == nil {
			t.Fatal("restore went on with an etcd host off")
		}
		requireAll(t, "the refusal", errorBlock(out), "host "+off, "no connection", "connection refused", "Nothing was changed on any host")
		requireUnchanged(t, l, before, "a refused restore")
		row(t, "etcd host off between plan and restore", err, out, "unchanged; healthy after power-on")
		if err := l.Start(ctx, off); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a changed host key", func(t *testing.T) {
		victim := etcd[0].Address
		orig, err := os.ReadFile(l.Dir.KnownHosts())
		if err != nil {
			t.Fatal(err)
		}
		// The operator's known_hosts records another key for the host
		// (as after a reinstall, or an intercepted connection).
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		signer, _ := ssh.NewSignerFromKey(priv)
		other := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
		var lines []string
		for _, line := range strings.Split(strings.TrimSpace(string(orig)), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == victim {
				line = f[0] + " " + other
			}
			lines = append(lines, line)
		}
		base := copyCluster(t, l, func(h string) string { return h }, []byte(strings.Join(lines, "\n")+"\n"))
		before := allStates(t, l)
		out, err := cli(t, l, "--base", base, "restore", name, "--snapshot", snap, "--yes")
		if err == nil {
			t.Fatal("restore went on with a changed host key")
		}
		requireAll(t, "the refusal", errorBlock(out), "host "+victim, "HOST KEY CHANGED", "ssh-keygen -R", "Nothing was changed on any host")
		requireUnchanged(t, l, before, "a refused restore")
		row(t, "changed host key", err, out, "unchanged")
	})

	t.Run("sudo needs a password", func(t *testing.T) {
		victim := etcd[1].Address
		// The operator reaches hosts as ops with become; one host's sudo asks for a password.
		known, _ := os.ReadFile(l.Dir.KnownHosts())
		base := copyCluster(t, l, func(h string) string {
			return strings.Replace(h, "ansible_user=root", "ansible_user=ops\nansible_become=true", 1)
		}, known)
		sh(t, l, victim, "grep -rl NOPASSWD /etc/sudoers.d | xargs sed -i 's/NOPASSWD://'")
		t.Cleanup(func() {
			l.Exec(ctx, victim, "grep -rl 'ALL=(ALL' /etc/sudoers.d | xargs sed -i 's/) ALL$/) NOPASSWD: ALL/; s/) ALL:ALL/) NOPASSWD: ALL:ALL/'")
		})
		before := allStates(t, l)
		out, err := cli(t, l, "--base", base, "restore", name, "--snapshot", snap, "--yes")
		if err == nil {
			t.Fatal("restore went on although sudo asks for a password on " + victim)
		}
		requireAll(t, "the refusal", errorBlock(out), "host "+victim, "sudo asks for a password", "NOPASSWD", "Nothing was changed on any host")
		requireUnchanged(t, l, before, "a refused restore")
		row(t, "sudo needs a password", err, out, "unchanged")
	})
}
