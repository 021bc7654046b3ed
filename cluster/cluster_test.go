package cluster

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

const hosts = "[etcd]\n10.0.0.1\n[kube_master]\n10.0.0.1\n[kube_node]\n10.0.0.2\n"

// The SSH setup every command uses: the cluster dir's key and known_hosts
// when present (the lab's layout), ~/.ssh/known_hosts always, -i keys first.
func TestOpenDerivesOneSSHSetup(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	base := t.TempDir()
	dir := filepath.Join(base, "clusters", "k8s-01")
	writeFile(t, filepath.Join(dir, "hosts"), hosts)

	// kubeasz's bastion layout: nothing under the cluster dir, keys in ~/.ssh.
	c, err := Open(Selector{Base: base, Cluster: "k8s-01", AcceptNewHostKeys: true, IdentityFiles: []string{"/keys/ops"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(home, ".ssh", "known_hosts")}; !reflect.DeepEqual(c.SSH.KnownHostsFiles, want) {
		t.Errorf("known_hosts %v, want %v", c.SSH.KnownHostsFiles, want)
	}
	if want := []string{"/keys/ops"}; !reflect.DeepEqual(c.SSH.IdentityFiles, want) || !c.SSH.AcceptNewHostKeys || c.SSH.NoAgent {
		t.Errorf("options %+v", c.SSH)
	}
	if c.Name != "k8s-01" || c.BackupDir != filepath.Join(dir, "backup") || c.RecordDir != filepath.Join(dir, "restores") {
		t.Errorf("cluster %+v", c)
	}

	// The lab's layout: ssh/ in the cluster dir comes first.
	writeFile(t, filepath.Join(dir, "ssh", "id_ed25519"), "key")
	writeFile(t, filepath.Join(dir, "ssh", "known_hosts"), "")
	c, err = Open(Selector{Base: base, Cluster: "k8s-01"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "ssh", "known_hosts"), filepath.Join(home, ".ssh", "known_hosts")}; !reflect.DeepEqual(c.SSH.KnownHostsFiles, want) {
		t.Errorf("known_hosts %v, want %v", c.SSH.KnownHostsFiles, want)
	}
	if want := []string{filepath.Join(dir, "ssh", "id_ed25519")}; !reflect.DeepEqual(c.SSH.IdentityFiles, want) {
		t.Errorf("keys %v, want %v", c.SSH.IdentityFiles, want)
	}

	// Any inventory with -i: its dir plays the cluster dir.
	inv := filepath.Join(t.TempDir(), "inventory.ini")
	writeFile(t, inv, hosts)
	c, err = Open(Selector{Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != inv || c.BackupDir != filepath.Join(filepath.Dir(inv), "backup") {
		t.Errorf("cluster %+v", c)
	}
}

func TestOpenNeedsOneTarget(t *testing.T) {
	if _, err := Open(Selector{Base: "/b"}); err == nil {
		t.Error("no cluster and no inventory accepted")
	}
	if _, err := Open(Selector{Base: "/b", Cluster: "x", Inventory: "/i"}); err == nil {
		t.Error("a cluster and an inventory accepted together")
	}
}
