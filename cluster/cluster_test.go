package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/transport"
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

// Every host's route is resolved at Open; options not followed are
// inventory warnings, once per setting; DescribeReach shows the routes.
func TestOpenResolvesRoutes(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	writeFile(t, filepath.Join(home, ".ssh", "config"), "Host 10.0.0.2\n  User ops\n  IdentityFile ~/.ssh/ops_key\n")
	base := t.TempDir()
	dir := filepath.Join(base, "clusters", "k8s-01")
	writeFile(t, filepath.Join(dir, "hosts"), hosts+"[all:vars]\nansible_ssh_common_args='-o ProxyJump=root@10.0.0.9 -L 1:2:3'\n")
	writeFile(t, filepath.Join(dir, "ssh", "known_hosts"), "")
	c, err := Open(Selector{Base: base, Cluster: "k8s-01", IdentityFiles: []string{"/keys/cli"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SSHWarnings) != 1 || !strings.Contains(c.SSHWarnings[0], "-L 1:2:3") || !strings.Contains(c.SSHWarnings[0], "host 10.0.0.1, 10.0.0.2") {
		t.Errorf("ssh warnings %q", c.SSHWarnings)
	}
	if !strings.Contains(strings.Join(c.Inventory.Warnings, "\n"), "-L 1:2:3") {
		t.Errorf("inventory warnings lack the ssh warning: %q", c.Inventory.Warnings)
	}
	reach := DescribeReach(c)
	r, ok := reach["10.0.0.2"].(*transport.Route)
	if !ok || len(reach) != 2 {
		t.Fatalf("reach %v", reach)
	}
	if r.User.Value != "ops" || len(r.Jumps) != 1 || r.Jumps[0].Target() != "root@10.0.0.9:22" {
		t.Errorf("route %s", r)
	}
	if r.Keys[0].Value != "/keys/cli" || r.Keys[0].From != "--private-key" || r.Keys[1].Value != filepath.Join(home, ".ssh", "ops_key") {
		t.Errorf("keys %+v", r.Keys)
	}
	if r.KnownHosts[0].Value != filepath.Join(dir, "ssh", "known_hosts") || r.KnownHosts[0].From != "cluster dir" {
		t.Errorf("known_hosts %+v", r.KnownHosts)
	}
	// JSON for `ezrestore inventory -o json`, text for the table.
	b, err := json.Marshal(reach["10.0.0.1"])
	if err != nil || !strings.Contains(string(b), `"jumps":[{`) || !strings.Contains(string(b), `"strict_host_key_checking":{"value":"yes","from":"default"}`) {
		t.Errorf("json %s, %v", b, err)
	}
	if s := reach["10.0.0.1"].(fmt.Stringer).String(); !strings.Contains(s, "jump 1") || !strings.Contains(s, "WARNING") {
		t.Errorf("text:\n%s", s)
	}
}
