package restore_test

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
)

// cliAt runs the binary against base with the environment of the test
// (HOME is the test's).
func cliAt(t *testing.T, base string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--base", base}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("$ HOME=%s ezrestore --base %s %s\n%s", os.Getenv("HOME"), base, strings.Join(args, " "), out)
	return string(out), err
}

func copyFileT(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// On a lab whose hosts accept SSH only from a jump host, every command
// reaches them through it, as the hosts file's -o ProxyJump says: status,
// backup, plan and restore. Then the same cluster from a kubeasz bastion's
// layout (no ssh/ in the cluster dir, no key variable, the key and
// known_hosts in ~/.ssh), and with a ~/.ssh/config naming them otherwise.
func TestBastionJumpHost(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "jb-e2e", JumpHost: true, Nodes: 1})
	t.Setenv("HOME", t.TempDir()) // nothing of the machine's ~/.ssh
	t.Setenv("SSH_AUTH_SOCK", "")
	jump, ok := l.Jump()
	if !ok {
		t.Fatal("lab has no jump host")
	}
	etcd := l.EtcdHosts()
	first := etcd[0].Address

	// The lab enforces the jump host: a direct login to any other host fails
	// with the right key and host key, through the jump host it works.
	for _, h := range append(etcd, l.Nodes()...) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "ssh", append(l.DirectSSHArgs(h.Address), "true")...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Fatalf("direct ssh to %s: err=%v %s; want a refusal", h.Address, err, out)
		}
		if got := sh(t, l, h.Address, "echo ok"); got != "ok" {
			t.Fatalf("ssh to %s through the jump host: %q", h.Address, got)
		}
	}
	hosts, err := os.ReadFile(l.Dir.Hosts())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hosts), "-o ProxyJump=root@"+jump.Address) {
		t.Fatalf("hosts file does not reach the hosts through the jump host:\n%s", hosts)
	}

	// The route ezrestore will take, offline.
	out, err := cliAt(t, l.Opts.Base, "inventory", l.Opts.Name, "-o", "json")
	if err != nil || !strings.Contains(out, "ProxyJump=root@"+jump.Address) {
		t.Fatalf("inventory does not show the jump host: %v", err)
	}

	// status, backup, plan and restore through the jump host.
	if out, err = cliAt(t, l.Opts.Base, "status", l.Opts.Name); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("status through the jump host: %v", err)
	}
	seedKeys(t, l)
	if _, err := cliAt(t, l.Opts.Base, "backup", l.Opts.Name); err != nil {
		t.Fatalf("backup through the jump host: %v", err)
	}
	etcdctl(t, l, first, "del /registry/pods/default/net-test3")
	if k := keys(t, l, first); strings.Contains(k, "net-test3") {
		t.Fatalf("net-test3 not deleted: %s", k)
	}
	if out, err = cliAt(t, l.Opts.Base, "plan", l.Opts.Name, "--snapshot", "snapshot.db"); err != nil || !strings.Contains(out, "--name "+lab.EtcdMemberName(first)) {
		t.Fatalf("plan through the jump host: %v", err)
	}
	if _, err := cliAt(t, l.Opts.Base, "restore", l.Opts.Name, "--snapshot", "snapshot.db", "--yes"); err != nil {
		t.Fatalf("restore through the jump host: %v", err)
	}
	requireHealthy(t, l)
	for _, h := range etcd {
		if k := keys(t, l, h.Address); !strings.Contains(k, "/registry/pods/default/net-test3") {
			t.Fatalf("%s: the restored key is not back: %s", h.Address, k)
		}
	}

	// A kubeasz bastion: the cluster dir without ssh/ and without the key
	// variable; the key and known_hosts in ~/.ssh; the jump host still in
	// the ssh arguments (the hosts accept nothing else).
	base := t.TempDir()
	dir := filepath.Join(base, "clusters", l.Opts.Name)
	copyFileT(t, l.Dir.Config(), filepath.Join(dir, "config.yml"))
	for _, f := range []string{"ca.pem", "ca-key.pem", "etcd.pem", "etcd-key.pem"} {
		copyFileT(t, filepath.Join(l.Dir.SSLDir(), f), filepath.Join(dir, "ssl", f))
	}
	var kept []string
	for _, line := range strings.Split(string(hosts), "\n") {
		switch {
		case strings.HasPrefix(line, "ansible_ssh_private_key_file="):
			continue
		case strings.HasPrefix(line, "ansible_ssh_common_args="):
			line = `ansible_ssh_common_args="-o ProxyJump=root@` + jump.Address + `"`
		}
		kept = append(kept, line)
	}
	bastionHosts := strings.Join(kept, "\n")
	if strings.Contains(bastionHosts, l.Dir.Path) {
		t.Fatalf("the bastion's hosts file still names the lab's cluster dir:\n%s", bastionHosts)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(bastionHosts), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	copyFileT(t, l.Dir.PrivateKey(), filepath.Join(home, ".ssh", "id_ed25519"))
	copyFileT(t, l.Dir.KnownHosts(), filepath.Join(home, ".ssh", "known_hosts"))
	if out, err = cliAt(t, base, "status", l.Opts.Name); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("status from a kubeasz bastion layout: %v", err)
	}
	if _, err := cliAt(t, base, "backup", l.Opts.Name); err != nil {
		t.Fatalf("backup from a kubeasz bastion layout: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "backup", "snapshot.db")); err != nil {
		t.Fatalf("backup from a kubeasz bastion layout left no snapshot: %v", err)
	}
	if out, err = cliAt(t, base, "plan", l.Opts.Name, "--snapshot", "snapshot.db"); err != nil || !strings.Contains(out, "--name "+lab.EtcdMemberName(first)) {
		t.Fatalf("plan from a kubeasz bastion layout: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ssh")); err == nil {
		t.Errorf("a command made ssh/ in the cluster dir")
	}

	// The key and known_hosts under other names, named by ~/.ssh/config only.
	home = t.TempDir()
	t.Setenv("HOME", home)
	copyFileT(t, l.Dir.PrivateKey(), filepath.Join(home, ".ssh", "other_key"))
	copyFileT(t, l.Dir.KnownHosts(), filepath.Join(home, ".ssh", "other_known"))
	cfg := "Host 127.*\n    IdentityFile ~/.ssh/other_key\n    UserKnownHostsFile ~/.ssh/other_known\n    IdentitiesOnly yes\n"
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err = cliAt(t, base, "status", l.Opts.Name); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("status with the key named by ~/.ssh/config: %v", err)
	}
	// Without ~/.ssh/config the key is not found, and the error says what
	// was offered (nothing) and what to do.
	if err := os.Remove(filepath.Join(home, ".ssh", "config")); err != nil {
		t.Fatal(err)
	}
	out, err = cliAt(t, base, "status", l.Opts.Name)
	if err == nil {
		t.Fatalf("status without any key succeeded")
	}
	if !regexp.MustCompile(`no SSH key to offer|--private-key`).MatchString(out) {
		t.Errorf("status without a key does not say what to do:\n%s", out)
	}
}
