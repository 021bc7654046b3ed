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

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// Backup reaches hosts exactly as restore does (both open the cluster through
// package cluster): on a kubeasz bastion there is no ssh/ in the cluster dir
// and no key variable in the hosts file; the key and known_hosts live in
// ~/.ssh, or the key only in ssh-agent, and a host seen for the first time is
// trusted only with --accept-new-host-keys.
func TestBackupReachesHostsAsRestoreDoes(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "bk-access", Nodes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	a := l.EtcdHosts()[0].Address
	if out, err := l.Exec(ctx, a, lab.EtcdctlCmd(a)+" put /registry/pods/default/net-test1 pod"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	// A copy of the cluster dir as a kubeasz deploy host has it.
	base := t.TempDir()
	dir := filepath.Join(base, "clusters", "k8s-01")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	hosts, err := os.ReadFile(l.Dir.Hosts())
	if err != nil {
		t.Fatal(err)
	}
	stripped := regexp.MustCompile(`(?m)^ansible_ssh_(private_key_file|common_args)=.*\n`).ReplaceAll(hosts, nil)
	if strings.Contains(string(stripped), l.Dir.PrivateKey()) {
		t.Fatal("the copied hosts file still names the lab's key")
	}
	copyFile(t, filepath.Join(dir, "hosts"), stripped)
	config, _ := os.ReadFile(l.Dir.Config())
	copyFile(t, filepath.Join(dir, "config.yml"), config)
	key, _ := os.ReadFile(l.Dir.PrivateKey())
	known, _ := os.ReadFile(l.Dir.KnownHosts())
	target := cluster.Selector{Base: base, Cluster: "k8s-01"}

	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")

	t.Run("nothing to offer is a clear error", func(t *testing.T) {
		_, err := Take(ctx, Options{Target: target})
		if err == nil || !strings.Contains(err.Error(), "no SSH key") {
			t.Fatalf("got %v, want a no-key error", err)
		}
	})

	copyFile(t, filepath.Join(home, ".ssh", "id_ed25519"), key)
	t.Run("default key, host unknown: refused, then accepted with AcceptNewHostKeys", func(t *testing.T) {
		_, err := Take(ctx, Options{Target: target})
		if err == nil || !strings.Contains(err.Error(), "not known") || !strings.Contains(err.Error(), "--accept-new-host-keys") {
			t.Fatalf("got %v, want an unknown-host refusal", err)
		}
		accept := target
		accept.AcceptNewHostKeys = true
		res, err := Take(ctx, Options{Target: accept})
		if err != nil {
			t.Fatalf("backup with ~/.ssh/id_ed25519 and --accept-new-host-keys: %v", err)
		}
		checkFiled(t, res)
		recorded, _ := os.ReadFile(filepath.Join(home, ".ssh", "known_hosts"))
		if !strings.Contains(string(recorded), l.EtcdHosts()[0].Address) {
			t.Errorf("~/.ssh/known_hosts does not record the host:\n%s", recorded)
		}
	})

	t.Run("default key and ~/.ssh/known_hosts", func(t *testing.T) {
		copyFile(t, filepath.Join(home, ".ssh", "known_hosts"), known)
		res, err := Take(ctx, Options{Target: target})
		if err != nil {
			t.Fatalf("backup with ~/.ssh/id_ed25519 and ~/.ssh/known_hosts: %v", err)
		}
		checkFiled(t, res)
	})

	t.Run("key only in ssh-agent", func(t *testing.T) {
		agentKey := filepath.Join(t.TempDir(), "agent_key")
		copyFile(t, agentKey, key)
		if err := os.Remove(filepath.Join(home, ".ssh", "id_ed25519")); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(t.TempDir(), "agent.sock")
		agent := exec.Command("ssh-agent", "-D", "-a", sock)
		if err := agent.Start(); err != nil {
			t.Fatalf("ssh-agent: %v", err)
		}
		t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
		for i := 0; i < 50; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		add := exec.Command("ssh-add", agentKey)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v: %s", err, out)
		}
		t.Setenv("SSH_AUTH_SOCK", sock)
		res, err := Take(ctx, Options{Target: target})
		if err != nil {
			t.Fatalf("backup with the key in ssh-agent only: %v", err)
		}
		checkFiled(t, res)
	})
}

func copyFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
