package inventory

import (
	"reflect"
	"strings"
	"testing"
)

// Member names default as the deployment tool named them: kubespray's
// etcd1..N by position in group etcd, kubeasz's etcd-<inventory name>.
func TestDefaultMemberNames(t *testing.T) {
	cases := []struct {
		name, file, inv string
		style           Style
		reason          string // prefix of StyleReason
		members         []string
		warning         string // prefix after "file:", "" for none about names
	}{
		{
			name: "kubeasz", file: "hosts",
			inv:   "[etcd]\n10.0.0.1\n10.0.0.2\n10.0.0.3\n[kube_master]\n10.0.0.1\n",
			style: StyleKubeasz, reason: "no kubespray group",
			members: []string{"etcd-10.0.0.1", "etcd-10.0.0.2", "etcd-10.0.0.3"},
		},
		{
			name: "kubespray INI by kube_control_plane", file: "hosts.ini",
			inv:   "[all]\nnode1 ip=10.0.0.1\nnode2 ip=10.0.0.2\nnode3 ip=10.0.0.3\n[kube_control_plane]\nnode1\n[etcd]\nnode1\nnode2\nnode3\n",
			style: StyleKubespray, reason: "group kube_control_plane at ",
			members: []string{"etcd1", "etcd2", "etcd3"},
			warning: "7: kubespray-style inventory (group kube_control_plane at ",
		},
		{
			// Ansible's groups['etcd'] follows the etcd group, not all's hosts.
			name: "kubespray YAML, etcd written in another order", file: "hosts.yaml",
			inv: `all:
  hosts:
    node1: {ip: 10.0.0.1}
    node2: {ip: 10.0.0.2}
    node3: {ip: 10.0.0.3}
  children:
    etcd:
      hosts:
        node3:
        node1:
        node2: {etcd_member_name: etcd-b}
    k8s_cluster:
      children:
        kube_node:
          hosts: {node1: }
`,
			style: StyleKubespray, reason: "group k8s_cluster at ",
			// Inventory order node1, node2, node3; positions in etcd 2, 3, 1.
			members: []string{"etcd2", "etcd-b", "etcd1"},
			warning: "7: kubespray-style inventory (group k8s_cluster at hosts.yaml:12): etcd hosts node1, node3 have no etcd_member_name, so ezrestore assumes kubespray's default names etcd2, etcd1",
		},
		{
			name: "kubespray by a variable only", file: "hosts",
			inv:   "[etcd]\nn1\n[kube_master]\nn1\n[all:vars]\nkube_network_plugin=calico\n",
			style: StyleKubespray, reason: "variable kube_network_plugin at ",
			members: []string{"etcd1"},
			warning: "1: kubespray-style inventory (variable kube_network_plugin at ",
		},
		{
			name: "etcd hosts through a child group", file: "hosts",
			inv:   "[k8s_cluster:children]\nkube_control_plane\n[kube_control_plane]\nc1\nc2\n[etcd:children]\nkube_control_plane\n[etcd]\nx1\n",
			style: StyleKubespray,
			// groups['etcd'] is x1 (its own) then c1, c2 (the child's).
			members: []string{"etcd2", "etcd3", "etcd1"},
			warning: "6: kubespray-style inventory",
		},
		{
			name: "kubespray with every name set: no warning", file: "hosts",
			inv:   "[kube_control_plane]\nn1\n[etcd]\nn1 etcd_member_name=first\n",
			style: StyleKubespray, members: []string{"first"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), tc.file, tc.inv)
			inv := mustLoad(t, path)
			if inv.Style != tc.style || !strings.HasPrefix(inv.StyleReason, tc.reason) {
				t.Errorf("style %s (%s), want %s (%s...)", inv.Style, inv.StyleReason, tc.style, tc.reason)
			}
			ms, err := inv.EtcdMembers()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.Name)
			}
			if !reflect.DeepEqual(got, tc.members) {
				t.Errorf("members %v, want %v", got, tc.members)
			}
			var nameWarn []string
			for _, w := range inv.Warnings {
				if strings.Contains(w, "etcd_member_name") {
					nameWarn = append(nameWarn, w)
				}
			}
			switch {
			case tc.warning == "" && len(nameWarn) > 0:
				t.Errorf("unexpected warnings %q", nameWarn)
			case tc.warning != "" && (len(nameWarn) != 1 || !strings.HasPrefix(nameWarn[0], path+":"+strings.ReplaceAll(tc.warning, "hosts.yaml:", path+":"))):
				t.Errorf("warnings %q, want one starting %s:%s", nameWarn, path, tc.warning)
			}
		})
	}
}

func TestUngroupedHostWarning(t *testing.T) {
	path := writeFile(t, t.TempDir(), "hosts", "jump ansible_host=10.0.0.9\n[etcd]\n10.0.0.1\n[ungrouped]\nlone\n[kube_master]\n10.0.0.1\n")
	inv := mustLoad(t, path)
	want := []string{
		path + ":1: host jump is in no group (Ansible puts it in ungrouped)",
		path + ":5: host lone is in no group",
	}
	if len(inv.Warnings) != 2 || !strings.HasPrefix(inv.Warnings[0], want[0]) || !strings.HasPrefix(inv.Warnings[1], want[1]) {
		t.Errorf("warnings %q, want prefixes %q", inv.Warnings, want)
	}
}
