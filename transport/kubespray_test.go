package transport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/inventory"
)

// kubespray's sample inventory with its bastion convention: every host is
// reached through the host named bastion, as kubespray's default
// ansible_ssh_common_args does, unless the inventory says otherwise.
func TestKubesprayBastionConvention(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "inventory.ini")
	os.WriteFile(p, []byte(`[kube_control_plane]
node1 ansible_host=10.3.0.1 etcd_member_name=etcd1
node2 ansible_host=10.3.0.2 etcd_member_name=etcd2
node3 ansible_host=10.3.0.3 etcd_member_name=etcd3

[etcd:children]
kube_control_plane

[kube_node]
node4 ansible_host=10.3.0.4
node5 ansible_host=10.3.0.5 ansible_ssh_common_args="-o ProxyJump=ops@jump2:2222"

[bastion]
bastion ansible_host=95.54.0.10 ansible_user=ops ansible_port=2200

[all:vars]
ansible_ssh_private_key_file=/keys/id_ed25519
`), 0o600)
	inv, err := inventory.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"node1", "node4"} {
		r, _ := Resolve(inv.Host(name), Options{SSHConfigFile: "/dev/null"})
		if len(r.Jumps) != 1 || r.Jumps[0].Target() != "ops@95.54.0.10:2200" {
			t.Fatalf("%s: jumps %+v, want the bastion ops@95.54.0.10:2200", name, r.Jumps)
		}
		if !strings.Contains(r.JumpFrom, "kubespray's role defaults") || !strings.Contains(r.JumpFrom, "inventory.ini:14") {
			t.Errorf("%s: the jump is not said to come from kubespray's convention: %q", name, r.JumpFrom)
		}
		// The hop offers the inventory's key, as kubespray's -i does.
		if len(r.Jumps[0].Keys) == 0 || r.Jumps[0].Keys[0].Value != "/keys/id_ed25519" {
			t.Errorf("%s: the bastion hop offers %+v", name, r.Jumps[0].Keys)
		}
		if got := inv.Host(name).Vars["bin_dir"]; got != "/usr/local/bin" {
			t.Errorf("%s: bin_dir %q, want kubespray's /usr/local/bin", name, got)
		}
	}
	// A host's own setting wins over kubespray's default.
	r, _ := Resolve(inv.Host("node5"), Options{SSHConfigFile: "/dev/null"})
	if len(r.Jumps) != 1 || r.Jumps[0].Target() != "ops@jump2:2222" {
		t.Errorf("node5 keeps its own jump host: %+v", r.Jumps)
	}
	// The bastion itself is reached directly.
	r, _ = Resolve(inv.Host("bastion"), Options{SSHConfigFile: "/dev/null"})
	if len(r.Jumps) != 0 || r.ProxyCommand.Value != "" {
		t.Errorf("the bastion is reached through %+v", r.Jumps)
	}
	if m, _ := inv.EtcdMembers(); len(m) != 3 || m[0].Name != "etcd1" {
		t.Errorf("members %+v", m)
	}
}
