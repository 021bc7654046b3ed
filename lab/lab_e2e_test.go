package lab_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// plainSSH runs cmd on addr with the OpenSSH client and nothing but the
// cluster dir's files: its key, its known_hosts, strict host-key checking.
func etcdctl(l *lab.Lab, addr, args string) string {
	return l.EtcdctlCmd(addr) + " --command-timeout=3s " + args
}

func plainSSH(t *testing.T, l *lab.Lab, user, addr, cmd string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", "-F", "/dev/null",
		"-i", l.Dir.PrivateKey(),
		"-o", "UserKnownHostsFile="+l.Dir.KnownHosts(),
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		user+"@"+addr, cmd).CombinedOutput()
	return string(out), err
}

// waitHealthy polls the cluster's health until it is healthy or time runs out.
func waitHealthy(t *testing.T, l *lab.Lab, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		h := l.EtcdHealth(ctx)
		if h.Healthy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not healthy after %s:\n%s", timeout, h)
		}
		time.Sleep(time.Second)
	}
}

func TestLabDefault(t *testing.T) {
	start := time.Now()
	l := labtest.Up(t, lab.Options{Name: "lab-e2e"})
	t.Logf("lab up took %s", time.Since(start).Round(100*time.Millisecond))
	ctx := context.Background()
	etcdHosts := l.EtcdHosts()
	if len(l.Hosts) != 5 || len(etcdHosts) != 3 || len(l.Masters()) != 3 || len(l.Nodes()) != 2 {
		t.Fatalf("topology: %+v", l.Hosts)
	}

	t.Run("cluster dir", func(t *testing.T) {
		for _, p := range []string{l.Dir.Path, l.Dir.SSHDir(), l.Dir.SSLDir()} {
			if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v %v, want a 0700 dir", p, st.Mode(), err)
			}
		}
		for _, p := range []string{l.Dir.Hosts(), l.Dir.Config(), l.Dir.PrivateKey(), l.Dir.KnownHosts(),
			filepath.Join(l.Dir.SSLDir(), "ca.pem"), filepath.Join(l.Dir.SSLDir(), "etcd.pem"), filepath.Join(l.Dir.SSLDir(), "etcd-key.pem")} {
			if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, want a 0600 file", p, err)
			}
		}
		cfg, _ := os.ReadFile(l.Dir.Config())
		if !strings.Contains(string(cfg), `ETCD_DATA_DIR: "/var/lib/etcd"`) || !strings.Contains(string(cfg), `ETCD_WAL_DIR: ""`) {
			t.Errorf("config.yml:\n%s", cfg)
		}
		kh, _ := os.ReadFile(l.Dir.KnownHosts())
		for _, h := range l.Hosts {
			if !strings.Contains(string(kh), h.Address+" ssh-ed25519 ") {
				t.Errorf("known_hosts has no line for %s", h.Address)
			}
		}
	})

	t.Run("etcd over TLS with each host's etcdctl", func(t *testing.T) {
		leaders, clusters := map[string]bool{}, map[string]bool{}
		for _, h := range etcdHosts {
			out, err := plainSSH(t, l, "root", h.Address, etcdctl(l, h.Address, "endpoint status -w fields"))
			if err != nil {
				t.Fatalf("%s: %v\n%s", h.Address, err, out)
			}
			fields := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if k, v, ok := strings.Cut(line, " : "); ok {
					fields[strings.Trim(k, `"`)] = strings.TrimSpace(v)
				}
			}
			leaders[fields["Leader"]] = true
			clusters[fields["ClusterID"]] = true
			out, err = plainSSH(t, l, "root", h.Address, etcdctl(l, h.Address, "member list"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range etcdHosts {
				if !strings.Contains(out, fmt.Sprintf("etcd-%s, https://%s:2380, https://%s:2379", e.Address, e.Address, e.Address)) {
					t.Errorf("%s's member list lacks %s:\n%s", h.Address, e.Address, out)
				}
			}
		}
		if len(leaders) != 1 || len(clusters) != 1 {
			t.Errorf("leaders %v, cluster IDs %v: want one of each", leaders, clusters)
		}
		// Client certificates are required: without one, etcd refuses.
		h := etcdHosts[0]
		out, err := plainSSH(t, l, "root", h.Address, fmt.Sprintf("ETCDCTL_API=3 /opt/kube/bin/etcdctl --endpoints=https://%s:2379 --cacert=/etc/kubernetes/ssl/ca.pem --command-timeout=2s get x", h.Address))
		if err == nil {
			t.Errorf("etcd answered a client without a certificate: %s", out)
		}
		if hl := l.EtcdHealth(ctx); !hl.Healthy {
			t.Errorf("EtcdHealth:\n%s", hl)
		}
	})

	t.Run("units, ssh and become", func(t *testing.T) {
		for _, h := range l.Hosts {
			units := strings.Join(h.Units(), " ")
			out, err := plainSSH(t, l, "root", h.Address, "systemctl is-active "+units)
			if err != nil || strings.Count(out, "active\n") != len(h.Units()) || strings.Contains(out, "inactive") {
				t.Errorf("%s: is-active %s: %v\n%s", h.Address, units, err, out)
			}
			out, err = plainSSH(t, l, "ops", h.Address, "sudo -n id -u")
			if err != nil || strings.TrimSpace(out) != "0" {
				t.Errorf("%s: ops sudo: %v %q", h.Address, err, out)
			}
			// Debian's etcd (user etcd) never runs; only etcd hosts have an etcd unit.
			out, _ = plainSSH(t, l, "root", h.Address, "pgrep -u etcd >/dev/null && echo etcd-user-runs; systemctl is-enabled etcd 2>&1 || true")
			want := "masked"
			if h.In("etcd") {
				want = "enabled"
			}
			if strings.TrimSpace(out) != want {
				t.Errorf("%s: etcd as user etcd / is-enabled: %q, want %q", h.Address, out, want)
			}
			// Nothing of the lab's listens on the shared 127.0.0.1.
			out, _ = plainSSH(t, l, "root", h.Address, "ss -Hltn | awk '{print $4}' | grep -E '^(127\\.0\\.0\\.1|0\\.0\\.0\\.0|\\*|\\[::\\]):(22|2379|2380)$' || true")
			if strings.TrimSpace(out) != "" {
				t.Errorf("%s: listening on shared addresses: %s", h.Address, out)
			}
		}
	})

	// A key written before the failures must survive them.
	h0 := etcdHosts[0]
	if out, err := l.Exec(ctx, h0.Address, etcdctl(l, h0.Address, "put /lab/probe before")); err != nil {
		t.Fatalf("put: %v %s", err, out)
	}

	t.Run("quorum held with one etcd host down, lost with two, healed after", func(t *testing.T) {
		a, b, c := etcdHosts[0], etcdHosts[1], etcdHosts[2]
		if err := l.Kill(ctx, c.Address); err != nil {
			t.Fatal(err)
		}
		if l.Running(c.Address) {
			t.Fatal("killed host still runs")
		}
		if err := dial(c.Address + ":2379"); err == nil {
			t.Fatal("killed host's etcd still listens")
		}
		var err error
		for i := 0; i < 20; i++ { // a new leader may need an election
			if _, err = l.Exec(ctx, a.Address, etcdctl(l, a.Address, "put /lab/one-down yes")); err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("quorum lost with one host down: %v", err)
		}
		if err := l.Kill(ctx, b.Address); err != nil {
			t.Fatal(err)
		}
		if out, err := l.Exec(ctx, a.Address, etcdctl(l, a.Address, "put /lab/two-down yes")); err == nil {
			t.Fatalf("write succeeded with two of three members down: %s", out)
		}
		if out, err := l.Exec(ctx, a.Address, etcdctl(l, a.Address, "endpoint health")); err == nil {
			t.Fatalf("endpoint healthy with two of three members down: %s", out)
		}
		for _, h := range []lab.Host{b, c} {
			if err := l.Start(ctx, h.Address); err != nil {
				t.Fatal(err)
			}
		}
		waitHealthy(t, l, 90*time.Second)
		out, err := l.Exec(ctx, c.Address, etcdctl(l, c.Address, "get /lab/probe --print-value-only"))
		if err != nil || strings.TrimSpace(string(out)) != "before" {
			t.Fatalf("key lost across the failures: %v %q", err, out)
		}
	})

	t.Run("up repairs a lab whose processes died", func(t *testing.T) {
		for _, h := range l.Hosts {
			if err := l.Kill(ctx, h.Address); err != nil {
				t.Fatal(err)
			}
		}
		// Mounts and state remain, as after a session that ended.
		start := time.Now()
		l2, err := lab.Up(ctx, lab.Options{Name: l.Opts.Name, Base: l.Opts.Base, Out: l.Opts.Out})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("repairing up took %s", time.Since(start).Round(100*time.Millisecond))
		if hl := l2.EtcdHealth(ctx); !hl.Healthy {
			t.Fatalf("after repair:\n%s", hl)
		}
		if n := countMounts(l.Opts.Name); n != len(l.Hosts) {
			t.Fatalf("%d overlay mounts after repair, want %d", n, len(l.Hosts))
		}
	})

	t.Run("down leaves nothing", func(t *testing.T) {
		start := time.Now()
		if err := l.Down(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("lab down took %s", time.Since(start).Round(100*time.Millisecond))
		assertGone(t, l)
	})
}

// TestLabEtcd36 brings up three etcd+master hosts and no nodes with etcd 3.6 built from
// the Go module proxy (cached after the first build).
func TestLabEtcd36(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "lab-e2e36", EtcdVersion: "3.6", Nodes: -1})
	ctx := context.Background()
	if !strings.HasPrefix(l.EtcdRelease, "3.6.") {
		t.Fatalf("release %q", l.EtcdRelease)
	}
	for _, h := range l.EtcdHosts() {
		out, err := plainSSH(t, l, "root", h.Address, "/opt/kube/bin/etcd --version; /opt/kube/bin/etcdutl version; "+etcdctl(l, h.Address, "endpoint status -w table"))
		if err != nil || !strings.Contains(out, "etcd Version: "+l.EtcdRelease) || !strings.Contains(out, "etcdutl version: "+l.EtcdRelease) {
			t.Fatalf("%s: %v\n%s", h.Address, err, out)
		}
	}
	if hl := l.EtcdHealth(ctx); !hl.Healthy || hl.Members[0].Version != l.EtcdRelease {
		t.Fatalf("health:\n%s", hl)
	}
	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	assertGone(t, l)
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func countMounts(name string) int {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], filepath.Join(lab.RuntimeDir, name)+"/") {
			n++
		}
	}
	return n
}

func assertGone(t *testing.T, l *lab.Lab) {
	t.Helper()
	if n := countMounts(l.Opts.Name); n != 0 {
		t.Errorf("%d mounts remain", n)
	}
	out, _ := exec.Command("ps", "-eo", "args").Output()
	for _, h := range l.Hosts {
		if strings.Contains(string(out), "--machine="+h.Machine+" ") {
			t.Errorf("a systemd-nspawn of %s remains", h.Machine)
		}
		for _, port := range []string{"22", "2379", "2380"} {
			if err := dial(h.Address + ":" + port); err == nil {
				t.Errorf("something still listens on %s:%s", h.Address, port)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(lab.RuntimeDir, l.Opts.Name)); err == nil {
		t.Errorf("runtime dir remains")
	}
	if _, err := os.Stat(l.Dir.Hosts()); err == nil {
		t.Errorf("cluster dir's hosts file remains")
	}
	if _, err := lab.Open(l.Opts.Name, ""); err == nil {
		t.Errorf("lab can still be opened")
	}
}

// TestLabCLI is the acceptance run through the binary: `lab up` in a
// fresh base, plain OpenSSH and the hosts' etcdctl confirm a healthy TLS
// cluster, `lab status` agrees, `lab kill`/`lab start` work by address, and
// `lab down` leaves no listener and no mount. It uses $EZRESTORE_BIN (make
// test sets it) or builds the binary.
func TestLabCLI(t *testing.T) {
	if os.Getenv("EZRESTORE_E2E") != "1" {
		t.Skip("set EZRESTORE_E2E=1 (make test does)")
	}
	if err := lab.Preflight(); err != nil {
		t.Fatalf("EZRESTORE_E2E=1 but this machine cannot run a lab: %v", err)
	}
	bin := os.Getenv("EZRESTORE_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "ezrestore")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ezrestore").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	base := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"lab"}, args...)...)
		cmd.Env = append(os.Environ(), "EZRESTORE_BASE="+base)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	const name = "lab-cli"
	t.Cleanup(func() { _, _ = run("down", "--name", name) })
	start := time.Now()
	if out, err := run("up", "--name", name, "--kube", "stand-in"); err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	t.Logf("ezrestore lab up took %s", time.Since(start).Round(100*time.Millisecond))
	l, err := lab.Open(name, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range l.EtcdHosts() {
		out, err := plainSSH(t, l, "root", h.Address, etcdctl(l, h.Address, "endpoint health"))
		if err != nil || !strings.Contains(out, "is healthy") {
			t.Fatalf("%s: %v\n%s", h.Address, err, out)
		}
	}
	if out, err := run("status", "--name", name); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("lab status: %v\n%s", err, out)
	}
	victim := l.Nodes()[0].Address
	if out, err := run("kill", "--name", name, victim); err != nil {
		t.Fatalf("lab kill: %v\n%s", err, out)
	}
	if out, err := run("status", "--name", name); err == nil {
		t.Fatalf("lab status exits 0 with a host down:\n%s", out)
	}
	if out, err := run("start", "--name", name, victim); err != nil {
		t.Fatalf("lab start: %v\n%s", err, out)
	}
	if out, err := run("ssh", "--name", name, victim, "--", "hostname"); err != nil || strings.TrimSpace(out) != l.Nodes()[0].Machine {
		t.Fatalf("lab ssh: %v %q", err, out)
	}
	if out, err := run("down", "--name", name); err != nil {
		t.Fatalf("lab down: %v\n%s", err, out)
	}
	assertGone(t, l)
}
