package backup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/inventory"
)

// The remote command line reaches etcdctl with every word intact, preferring
// bin_dir's etcdctl over the one on PATH.
func TestEtcdctlCommandLine(t *testing.T) {
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin dir's")
	if err := os.MkdirAll(binDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A stand-in that only prints how it was called: this test is about the shell words.
	script := "#!/bin/sh\necho \"api=$ETCDCTL_API\"\nfor a in \"$@\"; do echo \"[$a]\"; done\n"
	if err := os.WriteFile(filepath.Join(binDir, "etcdctl"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	line := etcdctl(binDir, "/etc/kube ssl/", "https://127.0.0.11:2379", "snapshot", "save", "/tmp/x;$(y)/snapshot.db")
	out, err := exec.Command("sh", "-c", line).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", line, err, out)
	}
	want := strings.Join([]string{"api=3",
		"[--endpoints=https://127.0.0.11:2379]",
		"[--cacert=/etc/kube ssl/ca.pem]",
		"[--cert=/etc/kube ssl/etcd.pem]",
		"[--key=/etc/kube ssl/etcd-key.pem]",
		"[snapshot]", "[save]", "[/tmp/x;$(y)/snapshot.db]"}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestParseVersion(t *testing.T) {
	out := `[{"Endpoint":"https://127.0.0.11:2379","Status":{"header":{"cluster_id":1,"member_id":2,"revision":7,"raft_term":2},"version":"3.5.17","dbSize":20480,"leader":2,"raftIndex":9,"raftTerm":2}}]`
	if v := parseVersion([]byte(out)); v != "3.5.17" {
		t.Errorf("version %q", v)
	}
	if v := parseVersion([]byte("garbage")); v != "" {
		t.Errorf("version %q from garbage", v)
	}
}

// With every member unreachable: an error naming each one, and no file or dir written.
func TestNoReachableMember(t *testing.T) {
	base := t.TempDir()
	cd := inventory.NewClusterDir(base, "dead")
	if err := os.MkdirAll(cd.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	hosts := "[etcd]\n127.0.0.1 ansible_port=1\n127.0.0.2 ansible_port=1\n\n[kube_master]\n127.0.0.1 ansible_port=1\n\n[kube_node]\n127.0.0.1 ansible_port=1\n"
	if err := os.WriteFile(cd.Hosts(), []byte(hosts), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Take(context.Background(), Options{Cluster: cd})
	if err == nil || res != nil {
		t.Fatalf("Take = %v, %v; want an error", res, err)
	}
	if !errors.Is(err, ErrNoHealthyMember) || !strings.Contains(err.Error(), "127.0.0.1") || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Errorf("error should name every member: %v", err)
	}
	if _, err := os.Stat(cd.BackupDir()); !os.IsNotExist(err) {
		t.Errorf("backup dir written: %v", err)
	}
}
