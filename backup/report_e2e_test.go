package backup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
	"github.com/ezrestore/ezrestore/transport"
)

// ezrestoreBin is the binary the e2e tests run: EZRESTORE_BIN, else one
// built for the test.
func ezrestoreBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("EZRESTORE_BIN"); b != "" {
		return b
	}
	b := filepath.Join(t.TempDir(), "ezrestore")
	if out, err := exec.Command("go", "build", "-o", b, "../cmd/ezrestore").CombinedOutput(); err != nil {
		t.Fatalf("building ezrestore: %v\n%s", err, out)
	}
	return b
}

// A backup scheduled with `backup schedule` and run by systemd reports
// through its metrics file: a success, then failures (every etcd member
// powered off) that move the failure count and the last attempt, never the
// last success; `snapshots --max-age` and `clusters` then say the backups
// are stale. The bastion is the lab's worker: its systemd runs the units
// (the machine running the tests need not boot with systemd), and it
// reaches the etcd hosts over SSH as a bastion does.
func TestScheduledBackupReports(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "daytwo-report", Nodes: 1})
	bin := ezrestoreBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bastion := l.Nodes()[0].Address
	// The binary and the cluster dir, at the same paths (the hosts file
	// names its key by absolute path).
	push := func(remote string, local *exec.Cmd) {
		t.Helper()
		pipe, err := local.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		ssh := exec.CommandContext(ctx, "ssh", append(l.SSHArgs(bastion), "--", remote)...)
		ssh.Stdin = pipe
		if err := local.Start(); err != nil {
			t.Fatal(err)
		}
		if out, err := ssh.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", remote, err, out)
		}
		if err := local.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	push("cat > /usr/local/bin/ezrestore && chmod 0755 /usr/local/bin/ezrestore", exec.Command("cat", bin))
	push("mkdir -p "+filepath.Dir(l.Dir.Path)+" && tar -C "+filepath.Dir(l.Dir.Path)+" -x",
		exec.Command("tar", "-C", filepath.Dir(l.Dir.Path), "-c", l.Dir.Name))
	on := func(cmd string) (string, error) {
		t.Helper()
		out, err := l.Exec(ctx, bastion, cmd)
		t.Logf("bastion$ %s\n%s%v", cmd, out, err)
		return string(out), err
	}
	cli := func(args ...string) (string, error) {
		t.Helper()
		q := []string{"/usr/local/bin/ezrestore"}
		for _, a := range append([]string{"--base", l.Dir.Base}, args...) {
			q = append(q, transport.Quote(a))
		}
		return on(strings.Join(q, " ") + " 2>&1")
	}
	// A yearly timer never fires during the test: systemctl start runs each backup.
	if _, err := cli("backup", "schedule", l.Dir.Name, "--every", "yearly"); err != nil {
		t.Fatalf("backup schedule: %v", err)
	}
	service := "ezrestore-backup-" + l.Dir.Name + ".service"
	unit, err := on("cat /etc/systemd/system/" + service)
	if err != nil {
		t.Fatal(err)
	}
	// No collector dir on the lab's hosts: the metrics go to the cluster dir.
	m := regexp.MustCompile(`--metrics-file (\S+)`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatalf("the scheduled backup writes no metrics file:\n%s", unit)
	}
	if want := filepath.Join(l.Dir.Path, MetricsFileName(l.Dir.Name)); m[1] != want {
		t.Errorf("metrics file %s, want %s", m[1], want)
	}
	readMetrics := func() *Metrics {
		t.Helper()
		text, err := on("cat " + m[1])
		if err != nil {
			t.Fatalf("the metrics file: %v", err)
		}
		local := filepath.Join(t.TempDir(), "m.prom")
		os.WriteFile(local, []byte(text), 0o600)
		got, err := ReadMetrics(local)
		if err != nil || got == nil {
			t.Fatalf("reading the metrics file: %v", err)
		}
		return got
	}
	runScheduled := func() error {
		t.Helper()
		_, err := on("systemctl start " + service)
		return err
	}
	if err := runScheduled(); err != nil {
		on("journalctl -u " + service + " --no-pager | tail -20")
		t.Fatalf("the scheduled backup failed on a healthy lab: %v", err)
	}
	ok := readMetrics()
	if !ok.LastOK || ok.ConsecutiveFailures != 0 || ok.LastSuccess.IsZero() || !ok.LastSuccess.Equal(ok.LastAttempt) || ok.Size == 0 {
		t.Fatalf("metrics after a success: %+v", ok)
	}
	if _, err := cli("snapshots", l.Dir.Name, "--max-age", "1h"); err != nil {
		t.Fatalf("snapshots --max-age 1h right after a backup: %v", err)
	}

	for _, h := range l.EtcdHosts() {
		if err := l.Kill(ctx, h.Address); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 2; i++ {
		if err := runScheduled(); err == nil {
			t.Fatalf("a scheduled backup with every etcd member off succeeded")
		}
		// It failed for the cause given, not another (journald may lag).
		if j, _ := on("journalctl -u " + service + " --no-pager -n 30"); !strings.Contains(j, ErrNoHealthyMember.Error()) {
			t.Logf("the journal does not show %q yet", ErrNoHealthyMember)
		}
		got := readMetrics()
		if got.ConsecutiveFailures != int64(i) || got.LastOK || !got.LastAttempt.After(ok.LastAttempt) || !got.LastSuccess.Equal(ok.LastSuccess) || got.Revision != ok.Revision || got.Size != ok.Size {
			t.Errorf("after failure %d: %+v; the success before: %+v", i, got, ok)
		}
	}
	on("cat " + m[1])

	// The newest verified backup is now older than the attempts since.
	age := time.Since(ok.LastSuccess) / 2
	out, err := cli("snapshots", l.Dir.Name, "--max-age", age.String())
	if err == nil {
		t.Errorf("snapshots --max-age %s passed with the last backup %s old", age, time.Since(ok.LastSuccess))
	}
	last := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if !strings.Contains(last, "the newest verified backup, snapshot_") || !strings.Contains(last, "older than --max-age") {
		t.Errorf("snapshots --max-age does not say why in its last line: %q", last)
	}
	if out, _ := cli("clusters", "--max-age", age.String()); !regexp.MustCompile(`(?m)^` + l.Dir.Name + `\s.*STALE`).MatchString(out) {
		t.Errorf("clusters does not flag %s as stale", l.Dir.Name)
	}
}
