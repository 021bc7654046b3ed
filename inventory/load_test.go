package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustLoad(t *testing.T, path string, extra ...string) *Inventory {
	t.Helper()
	inv, err := Load(path, extra...)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return inv
}

func names(hosts []*Host) []string {
	out := []string{}
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

func TestLoadClusterKubeasz(t *testing.T) {
	dir := NewClusterDir("testdata/kubeasz", "k8s-01")
	inv, err := LoadCluster(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(inv.EtcdHosts()), []string{"192.168.1.1", "192.168.1.2", "192.168.1.3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("etcd = %v, want %v", got, want)
	}
	if got, want := names(inv.Masters()), []string{"192.168.1.1", "192.168.1.2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("masters = %v, want %v", got, want)
	}
	if got, want := names(inv.Nodes()), []string{"192.168.1.3", "192.168.1.4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("nodes = %v, want %v", got, want)
	}
	if len(inv.Hosts) != 4 {
		t.Errorf("hosts = %v, want 4 (commented hosts are not hosts)", names(inv.Hosts))
	}
	if inv.Cluster != "k8s-01" || !reflect.DeepEqual(inv.VarFiles, []string{dir.Config()}) {
		t.Errorf("Cluster=%q VarFiles=%v", inv.Cluster, inv.VarFiles)
	}
	for k, want := range map[string]string{
		"cluster_dir":       "/etc/kubeasz/clusters/k8s-01", // {{ base_dir }} and _cluster_name_
		"SECURE_PORT":       "6443",
		"k8s_nodename":      "",
		"ETCD_DATA_DIR":     "/var/lib/etcd", // from config.yml
		"ETCD_WAL_DIR":      "",
		"offline_dir":       "/etc/kubeasz/down", // config.yml using a hosts var
		"CONTEXT_NAME":      "context-cluster1",
		"HARBOR_REGISTRY":   "harbor.easzlab.io.local:8443",
		"NODE_CIDR_LEN":     "24",
		"OS_HARDEN":         "false",
		"INSECURE_REG":      `["http://easzlab.io.local:5000", "https://reg.yourcompany.com"]`,
		"MASTER_CERT_HOSTS": `["10.1.1.1", "k8s.easzlab.io"]`,
		// Jinja that is not a plain variable stays as written.
		"calico_ver_main": "{{ calico_ver.split('.')[0] }}.{{ calico_ver.split('.')[1] }}",
	} {
		if got := inv.Vars[k]; got != want {
			t.Errorf("Vars[%s] = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(inv.Vars["K8S_NODENAME"], "{%- if") {
		t.Errorf("K8S_NODENAME = %q, want the Jinja block untouched", inv.Vars["K8S_NODENAME"])
	}
	if p := inv.VarPos["ETCD_DATA_DIR"]; p.File != dir.Config() || p.Line != 21 {
		t.Errorf("VarPos[ETCD_DATA_DIR] = %v", p)
	}
	h := inv.Host("192.168.1.1")
	if h == nil || h.Address != "192.168.1.1" || h.Port != 22 || h.User != "root" || h.BecomeUser != "root" || h.Become {
		t.Fatalf("host 192.168.1.1 = %+v", h)
	}
	if v, _ := h.Var("k8s_nodename"); v != "master-01" {
		t.Errorf("k8s_nodename = %q, want master-01 (host var beats all:vars)", v)
	}
	if v, _ := inv.Host("192.168.1.4").Var("k8s_nodename"); v != "worker-02" {
		t.Errorf("k8s_nodename of .4 = %q (double quotes and a trailing comment)", v)
	}
	if !reflect.DeepEqual(h.Groups, []string{"etcd", "kube_master"}) || h.File != dir.Hosts() || h.Line != 3 {
		t.Errorf("groups %v at %s:%d", h.Groups, h.File, h.Line)
	}
	if len(inv.Warnings) != 0 {
		t.Errorf("warnings: %v", inv.Warnings)
	}
	ms, err := inv.EtcdMembers()
	if err != nil {
		t.Fatal(err)
	}
	want := []EtcdMember{
		{inv.Hosts[0], "etcd-192.168.1.1", "https://192.168.1.1:2380", "https://192.168.1.1:2379"},
		{inv.Hosts[1], "etcd-192.168.1.2", "https://192.168.1.2:2380", "https://192.168.1.2:2379"},
		{inv.Hosts[2], "etcd-192.168.1.3", "https://192.168.1.3:2380", "https://192.168.1.3:2379"},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("members = %+v", ms)
	}
}

func TestLoadClusterPrecedence(t *testing.T) {
	// config.yml < -e files, in order.
	dir := NewClusterDir("testdata/kubeasz", "k8s-01")
	inv, err := LoadCluster(dir, "testdata/vars/extra.yml", "@testdata/vars/extra2.yml")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"ETCD_DATA_DIR":  "/data/etcd",
		"level":          "extra2",
		"from_extra":     "/etc/kubeasz/x",
		"INSTALL_SOURCE": "online",
	} {
		if got := inv.Vars[k]; got != want {
			t.Errorf("Vars[%s] = %q, want %q", k, got, want)
		}
		if got, _ := inv.Hosts[0].Var(k); got != want {
			t.Errorf("host var %s = %q, want %q", k, got, want)
		}
	}
	if want := []string{dir.Config(), "testdata/vars/extra.yml", "testdata/vars/extra2.yml"}; !reflect.DeepEqual(inv.VarFiles, want) {
		t.Errorf("VarFiles = %v", inv.VarFiles)
	}
}

func TestLoadClusterNotFound(t *testing.T) {
	dir := NewClusterDir("testdata/kubeasz", "nope")
	_, err := LoadCluster(dir)
	want := "cluster nope not found: no " + filepath.Join("testdata/kubeasz/clusters/nope/hosts") + "; is --base right?"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if !errors.Is(err, ErrClusterNotFound) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("errors.Is fails for %v", err)
	}
}

func TestLoadClusterWithoutConfig(t *testing.T) {
	base := t.TempDir()
	dir := NewClusterDir(base, "c2")
	if err := os.MkdirAll(dir.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile("testdata/kubeasz/clusters/k8s-01/hosts")
	if err := os.WriteFile(dir.Hosts(), src, 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := LoadCluster(dir)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Vars["cluster_dir"] != "/etc/kubeasz/clusters/c2" || len(inv.VarFiles) != 0 {
		t.Errorf("cluster_dir=%q VarFiles=%v", inv.Vars["cluster_dir"], inv.VarFiles)
	}
	// Plain Load does not know the cluster name and leaves the placeholder.
	inv = mustLoad(t, dir.Hosts())
	if inv.Vars["cluster_dir"] != "/etc/kubeasz/clusters/_cluster_name_" {
		t.Errorf("cluster_dir = %q", inv.Vars["cluster_dir"])
	}
}

func TestINIFeatures(t *testing.T) {
	inv := mustLoad(t, "testdata/ini/features.ini")
	wantHosts := []string{"bastion.example.lan", "etcd1.example.lan", "etcd2.example.lan", "etcd3.example.lan",
		"10.0.1.7", "10.0.1.8", "master-a", "master-b", "ctl01", "ctl02", "node08", "node10"}
	if got := names(inv.Hosts); !reflect.DeepEqual(got, wantHosts) {
		t.Fatalf("hosts = %v\nwant    %v", got, wantHosts)
	}
	groups := []struct {
		group string
		want  []string
	}{
		{"etcd", []string{"etcd1.example.lan", "etcd2.example.lan", "etcd3.example.lan", "10.0.1.7", "10.0.1.8"}},
		{"kube_master", []string{"master-a", "master-b", "ctl01", "ctl02"}},
		{"kube_node", []string{"master-a", "node08", "node10"}},
		{"k8s_cluster", []string{"master-a", "master-b", "ctl01", "ctl02", "node08", "node10"}},
		{"ungrouped", []string{"bastion.example.lan"}},
		{"empty_group", []string{}},
	}
	for _, g := range groups {
		if got := names(inv.Group(g.group)); !reflect.DeepEqual(got, g.want) {
			t.Errorf("group %s = %v, want %v", g.group, got, g.want)
		}
	}
	if p := inv.GroupPos("empty_group"); p.Line != 17 {
		t.Errorf("empty_group at %v", p)
	}
	type conn struct {
		addr       string
		port       int
		user, key  string
		become     bool
		becomeUser string
	}
	hosts := []struct {
		name string
		conn conn
		vars map[string]string
	}{
		{"bastion.example.lan", conn{"10.0.9.9", 22, "ops", "", false, "root"}, map[string]string{"level": "all"}},
		{"etcd2.example.lan", conn{"etcd2.example.lan", 22, "root", "", false, "root"},
			map[string]string{"etcd_member_name": "etcd2", "level": "all"}},
		{"master-a", conn{"master-a", 2200, "root", "", true, "admin"},
			map[string]string{"level": "kube_node", "ansible_become": "yes"}},
		{"master-b", conn{"master-b", 2200, "root", "", true, "admin"}, map[string]string{"level": "k8s_cluster"}},
		{"ctl02", conn{"ctl02", 2222, "deploy user", "/keys/id ed25519", false, "root"}, nil},
		{"node10", conn{"node10", 2200, "root", "", false, "root"}, map[string]string{
			"role":          "worker",
			"level":         "kube_node",
			"quoted":        "a # not a comment",
			"unquoted":      "plain text # kept, as Ansible keeps it",
			"escaped":       `say "hi"`,
			"cluster_dir":   "/etc/kubeasz/clusters/_cluster_name_",
			"with_default":  "fallback",
			"with_default2": "/etc/kubeasz",
			"filtered":      "{{ base_dir | upper }}",
			"undefined_ref": "x{{ nope }}y",
			"empty":         "",
		}},
	}
	for _, tc := range hosts {
		h := inv.Host(tc.name)
		if h == nil {
			t.Errorf("no host %s", tc.name)
			continue
		}
		got := conn{h.Address, h.Port, h.User, h.KeyFile, h.Become, h.BecomeUser}
		if got != tc.conn {
			t.Errorf("%s: connection %+v, want %+v", tc.name, got, tc.conn)
		}
		for k, want := range tc.vars {
			if v, ok := h.Var(k); !ok || v != want {
				t.Errorf("%s: %s = %q (set %v), want %q", tc.name, k, v, ok, want)
			}
		}
	}
	// A host defined on two lines keeps its first line; its vars merge.
	if h := inv.Host("master-a"); h.Line != 10 || !reflect.DeepEqual(h.Groups, []string{"kube_master", "kube_node", "k8s_cluster"}) {
		t.Errorf("master-a at line %d in %v", h.Line, h.Groups)
	}
	// Where a variable came from.
	if p := inv.Host("node10").VarPos["level"]; p.Line != 31 {
		t.Errorf("level of node10 from %v, want line 31 ([kube_node:vars])", p)
	}
	ms, err := inv.EtcdMembers()
	if err != nil {
		t.Fatal(err)
	}
	// k8s_cluster makes it kubespray-style: the 4th etcd host is etcd4.
	if ms[0].Name != "etcd1" || ms[3].Name != "etcd4" || ms[3].PeerURL != "https://10.0.1.7:2380" || inv.Style != StyleKubespray {
		t.Errorf("members %+v (style %s)", ms, inv.Style)
	}
	wantWarn := []string{
		"testdata/ini/features.ini:3: host bastion.example.lan is in no group",
		"testdata/ini/features.ini:5: kubespray-style inventory (group k8s_cluster at testdata/ini/features.ini:19): etcd hosts 10.0.1.7, 10.0.1.8 have no etcd_member_name, so ezrestore assumes kubespray's default names etcd4, etcd5",
	}
	if len(inv.Warnings) != len(wantWarn) {
		t.Errorf("warnings %q", inv.Warnings)
	}
	for i := range wantWarn {
		if i < len(inv.Warnings) && !strings.HasPrefix(inv.Warnings[i], wantWarn[i]) {
			t.Errorf("warning %d\n  %s\nwant prefix\n  %s", i, inv.Warnings[i], wantWarn[i])
		}
	}
	// A variable that uses an undefined one is fine until something reads it strictly.
	if _, err := inv.Host("node10").StrictVar("undefined_ref"); err == nil ||
		!strings.Contains(err.Error(), "features.ini:40: undefined_ref of host node10 uses undefined variable nope") {
		t.Errorf("StrictVar: %v", err)
	}
	if _, err := inv.Host("node10").StrictVar("filtered"); err == nil || !strings.Contains(err.Error(), "cannot evaluate") {
		t.Errorf("StrictVar: %v", err)
	}
	if v, err := inv.Host("node10").StrictVar("with_default"); err != nil || v != "fallback" {
		t.Errorf("StrictVar = %q, %v", v, err)
	}
	if _, err := inv.Host("node10").StrictVar("unset"); !errors.Is(err, ErrBadVar) {
		t.Errorf("StrictVar(unset) = %v", err)
	}
}

func TestKubesprayInventories(t *testing.T) {
	for _, path := range []string{"testdata/yaml/kubespray.yml", "testdata/sniff/hosts_yaml"} {
		t.Run(path, func(t *testing.T) {
			inv := mustLoad(t, path)
			if got, want := names(inv.Masters()), []string{"node1", "node2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("masters (kube_control_plane) = %v, want %v", got, want)
			}
			if got, want := names(inv.Nodes()), []string{"node1", "node2", "node3", "node4"}; !reflect.DeepEqual(got, want) {
				t.Errorf("nodes = %v, want %v", got, want)
			}
			n4 := inv.Host("node4")
			if n4.Address != "10.10.0.14" || n4.Port != 2222 || n4.User != "ubuntu" || !n4.Become {
				t.Errorf("node4 = %+v", n4)
			}
			if v, _ := inv.Host("node1").Var("etcd_data_dir"); v != "/var/lib/etcd" {
				t.Errorf("etcd_data_dir = %q", v)
			}
			if v, _ := n4.Var("etcd_data_dir"); v != "" {
				t.Errorf("node4 is not in etcd but has etcd_data_dir %q", v)
			}
			if !n4.InGroup("k8s_cluster") || n4.InGroup("etcd") {
				t.Errorf("node4 groups %v", n4.Groups)
			}
			ms, err := inv.EtcdMembers()
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"etcd1=https://10.10.0.11:2380", "etcd2=https://10.10.0.12:2380", "etcd3=https://10.10.0.13:2380"}
			var got []string
			for _, m := range ms {
				got = append(got, m.Name+"="+m.PeerURL)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("members %v, want %v", got, want)
			}
			if inv.GroupPos("calico_rr").Line == 0 || len(inv.Group("calico_rr")) != 0 {
				t.Errorf("calico_rr should be declared and empty")
			}
		})
	}
	for _, path := range []string{"testdata/ini/kubespray.ini", "testdata/sniff/hosts_ini"} {
		t.Run(path, func(t *testing.T) {
			inv := mustLoad(t, path)
			if got, want := names(inv.Masters()), []string{"node1", "node2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("masters = %v", got)
			}
			ms, err := inv.EtcdMembers()
			if err != nil || len(ms) != 3 || ms[2].Name != "etcd3" || ms[2].ClientURL != "https://10.20.0.3:2379" {
				t.Errorf("members %+v, %v", ms, err)
			}
			if h := inv.Host("node3"); !h.InGroup("k8s_cluster") || h.InGroup("kube_master") {
				t.Errorf("node3 groups %v", h.Groups)
			}
		})
	}
}

func TestYAMLFeatures(t *testing.T) {
	inv := mustLoad(t, "testdata/yaml/features.yaml")
	wantHosts := []string{"db-a", "db-b", "db-c", "web01", "web02", "web03", "2001:db8::5", "2001:db8::6"}
	if got := names(inv.Hosts); !reflect.DeepEqual(got, wantHosts) {
		t.Fatalf("hosts = %v, want %v", got, wantHosts)
	}
	dbb := inv.Host("db-b")
	if dbb.Port != 2201 || dbb.Vars["level"] != "host" || dbb.Line != 16 {
		t.Errorf("db-b = %+v", dbb)
	}
	web := inv.Host("web01")
	for k, want := range map[string]string{
		"level": "web", "a": "1", "list": "[1, 2]", "nested": `{key: "/srv"}`,
		"flag": "yes", "nothing": "", "number": "0755", "unsafe_val": "{{ base }}",
	} {
		if got := web.Vars[k]; got != want {
			t.Errorf("web01 %s = %q, want %q", k, got, want)
		}
	}
	if a := inv.Host("web03").Address; a != "10.1.0.3" {
		t.Errorf("web03 address %q", a)
	}
	v6 := inv.Host("2001:db8::5")
	if v6.Port != 2022 || !v6.InGroup("top_level_group") {
		t.Errorf("v6 host %+v", v6)
	}
	ms, err := inv.EtcdMembers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].PeerURL != "https://db-a:2380" {
		t.Errorf("members %+v", ms)
	}
}

func TestJSONInventory(t *testing.T) {
	for _, path := range []string{"testdata/yaml/inventory.json", "testdata/sniff/hosts_json"} {
		inv := mustLoad(t, path)
		if len(inv.EtcdHosts()) == 0 {
			t.Errorf("%s: no etcd hosts", path)
		}
	}
	inv := mustLoad(t, "testdata/yaml/inventory.json")
	if h := inv.Host("10.2.0.2"); h.User != "core" || h.Vars["answer"] != "42" || h.Vars["on"] != "true" {
		t.Errorf("host %+v", h)
	}
	ms, _ := inv.EtcdMembers()
	if len(ms) != 3 || ms[1].Name != "e2" {
		t.Errorf("members %+v", ms)
	}
}

func TestIPv6PeerURL(t *testing.T) {
	h := &Host{Name: "2001:db8::7", Vars: map[string]string{}}
	m, err := h.etcdMember("etcd-"+h.Name, h.Name)
	if err != nil || m.PeerURL != "https://[2001:db8::7]:2380" {
		t.Errorf("%+v %v", m, err)
	}
}

func TestEvenEtcdWarning(t *testing.T) {
	inv := mustLoad(t, "testdata/ini/even.ini")
	if len(inv.Warnings) != 1 || !strings.HasPrefix(inv.Warnings[0], "testdata/ini/even.ini:1: etcd has 2 members") {
		t.Errorf("warnings %q", inv.Warnings)
	}
}

func TestYAMLUnknownKeyWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inv.yml")
	os.WriteFile(path, []byte("etcd:\n  hosts:\n    10.0.0.1:\n  host:\n    10.0.0.2:\n"), 0o644)
	inv := mustLoad(t, path)
	if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0], `inv.yml:4: skipping unexpected key "host" in group etcd`) {
		t.Errorf("warnings %q", inv.Warnings)
	}
}

func TestEtcdMembersEmpty(t *testing.T) {
	inv := &Inventory{File: "clusters/x/hosts"}
	_, err := inv.EtcdMembers()
	if err == nil || err.Error() != "clusters/x/hosts: group etcd has no hosts" || !errors.Is(err, ErrNoEtcd) {
		t.Errorf("err = %v", err)
	}
}

// Every bad inventory fails with its file:line and a message that says what is wrong.
func TestBadInventories(t *testing.T) {
	cases := []struct {
		file  string
		extra []string
		kind  error
		want  string // expected error text after "testdata/bad/"
		// members is set when Load succeeds and EtcdMembers must fail.
		members bool
	}{
		{file: "section.ini", kind: ErrSyntax, want: "section.ini:3: invalid section [kube master]"},
		{file: "section_type.ini", kind: ErrSyntax, want: `section_type.ini:4: section [etcd:hosts] has an unknown type "hosts"`},
		{file: "quote.ini", kind: ErrSyntax, want: "quote.ini:2: no closing quotation (')"},
		{file: "hostvar.ini", kind: ErrSyntax, want: `hostvar.ini:3: expected key=value after host 10.0.0.2, got "novalue"`},
		{file: "range_order.ini", kind: ErrSyntax, want: "range_order.ini:2: host pattern \"node[3:1]\": range [3:1] begins after its end"},
		{file: "range_pad.ini", kind: ErrSyntax, want: "range_pad.ini:2: host pattern \"node[01:3]\": range [01:3]: a zero-padded begin needs an end of the same width"},
		{file: "range_open.ini", kind: ErrSyntax, want: "range_open.ini:3: host pattern \"node[1:3\": range without closing ']'"},
		{file: "range_huge.ini", kind: ErrSyntax, want: "range_huge.ini:2: host pattern \"node[0:99999999]\": range [0:99999999] expands to more than 10000 hosts"},
		{file: "vars_undefined_group.ini", kind: ErrSyntax, want: "vars_undefined_group.ini:4: [kube_nodes:vars] for a group that is defined nowhere: no [kube_nodes] or [kube_nodes:children] section"},
		{file: "vars_line.ini", kind: ErrSyntax, want: `vars_line.ini:5: expected key=value in [all:vars], got "novalue"`},
		{file: "children_loop.ini", kind: ErrSyntax, want: "children_loop.ini:6: adding group a as a child of b makes a loop of groups"},
		{file: "children_line.ini", kind: ErrSyntax, want: `children_line.ini:4: expected a group name in [a:children], got "b c"`},
		{file: "empty_etcd.ini", kind: ErrNoEtcd, want: "empty_etcd.ini:2: group etcd has no hosts"},
		{file: "no_etcd.ini", kind: ErrNoEtcd, want: "no_etcd.ini: no etcd group"},
		{file: "yaml_empty_etcd.yml", kind: ErrNoEtcd, want: "yaml_empty_etcd.yml:3: group etcd has no hosts"},
		{file: "dup_addr.ini", kind: ErrDuplicate, want: "dup_addr.ini:6: host 10.0.0.1 has the same address 10.0.0.1:22 as host node1 (testdata/bad/dup_addr.ini:2)"},
		{file: "dup_addr_port.ini", kind: ErrDuplicate, want: "dup_addr_port.ini:3: host node2 has the same address 10.0.0.1:2222 as host node1"},
		{file: "empty_host.ini", kind: ErrNoAddress, want: "empty_host.ini:3: host node2 has an empty ansible_host: no address to connect to"},
		{file: "empty_host_group.ini", kind: ErrNoAddress, want: "empty_host_group.ini:8: host node2 has an empty ansible_host"},
		{file: "port.ini", kind: ErrBadVar, want: `port.ini:2: ansible_port of host 10.0.0.1 must be a port number (1-65535), got "ssh"`},
		{file: "port_pattern.ini", kind: ErrSyntax, want: `port_pattern.ini:2: host pattern "10.0.0.1:99999" has an invalid port "99999"`},
		{file: "pattern_colon.ini", kind: ErrSyntax, want: `pattern_colon.ini:2: host pattern "10.0.0.1:" ends in ':'`},
		{file: "become.ini", kind: ErrBadVar, want: `become.ini:4: ansible_become of host 10.0.0.1 must be true or false, got "maybe"`},
		{file: "cycle.ini", kind: ErrBadVar, want: "cycle.ini:4: variable a refers to itself: a -> b -> c -> a"},
		{file: "undefined_address.ini", kind: ErrBadVar, want: `undefined_address.ini:3: ansible_host of host node2 uses undefined variable node2_ip (value "{{ node2_ip }}")`},
		{file: "template_address.ini", kind: ErrBadVar, want: `template_address.ini:3: ansible_host of host node2 is a template ezrestore cannot evaluate`},
		{file: "dup_member.ini", kind: ErrDuplicate, members: true, want: "dup_member.ini:4: etcd members 10.0.0.1 and 10.0.0.3 (testdata/bad/dup_member.ini:2) have the same name etcd1"},
		{file: "dup_peer.ini", kind: ErrDuplicate, members: true, want: "dup_peer.ini:4: etcd members 10.0.0.2 and 10.0.0.3 (testdata/bad/dup_peer.ini:3) have the same peer URL https://10.0.0.2:2380"},
		{file: "bad_peer_url.ini", kind: ErrBadVar, members: true, want: `bad_peer_url.ini:2: etcd_peer_url of host 10.0.0.1 must be a URL`},
		{file: "undefined_member.ini", kind: ErrBadVar, members: true, want: `undefined_member.ini:2: etcd_member_name of host 10.0.0.1 uses undefined variable node_index`},
		{file: "bad.yml", kind: ErrSyntax, want: "bad.yml:4: invalid YAML: did not find expected key"},
		{file: "group_list.yml", kind: ErrSyntax, want: "group_list.yml:4: group etcd must be a map with hosts, children or vars, got a list"},
		{file: "hosts_list.yaml", kind: ErrSyntax, want: "hosts_list.yaml:5: hosts of group etcd must be a map of host names, got a list"},
		{file: "vars_list.yml", kind: ErrSyntax, want: "vars_list.yml:6: vars of host 10.0.0.1 must be a map, got a list"},
		{file: "not_a_map.yml", kind: ErrSyntax, want: "not_a_map.yml:1: a YAML inventory must be a map of groups, got a list"},
		{file: "empty.yml", kind: ErrSyntax, want: "empty.yml: empty YAML inventory"},
		{file: "yaml_range.yml", kind: ErrSyntax, want: `yaml_range.yml:4: host pattern "node[b:a]": range [b:a] begins after its end`},
		// Extra-vars files.
		{file: "../ini/even.ini", extra: []string{"testdata/vars/notamap.yml"}, kind: ErrSyntax,
			want: "../vars/notamap.yml:1: a vars file must be a map of variables, got a list"},
		{file: "../ini/even.ini", extra: []string{"testdata/vars/badyaml.yml"}, kind: ErrSyntax,
			want: "../vars/badyaml.yml:2: invalid YAML: did not find expected ',' or ']'"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := "testdata/bad/" + tc.file
			inv, err := Load(path, tc.extra...)
			if tc.members {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				_, err = inv.EtcdMembers()
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			want := filepath.Clean("testdata/bad/"+strings.SplitN(tc.want, ":", 2)[0]) + ":" + strings.SplitN(tc.want, ":", 2)[1]
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n  %v\nwant prefix\n  %s", err, want)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
			var ie *Error
			if !errors.As(err, &ie) || ie.File == "" {
				t.Errorf("error %v is not an *Error with a file", err)
			}
		})
	}
}

func TestMissingFiles(t *testing.T) {
	if _, err := Load("testdata/nope/hosts"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "testdata/nope/hosts") {
		t.Errorf("missing inventory: %v", err)
	}
	if _, err := Load("testdata/ini/even.ini", "@testdata/vars/nope.yml"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "testdata/vars/nope.yml") {
		t.Errorf("missing vars file: %v", err)
	}
}

func TestGroupVarsAndHostVarsDirs(t *testing.T) {
	inv := mustLoad(t, "testdata/varsdirs/inventory.ini")
	cases := []struct {
		host, name, want string
	}{
		{"node1", "x", "inv_node"},  // no group_vars sets x
		{"node4", "y", "gv_all"},    // group_vars/all beats inventory group vars
		{"node1", "z", "gv_node"},   // group_vars/<group> beats group_vars/all
		{"node4", "z", "host_vars"}, // host_vars beats group_vars
		{"node1", "w", "inline"},    // inventory host vars beat group_vars
		{"node2", "w", "gv_etcd"},   // group_vars/etcd/ dir, files in name order
		{"node2", "etcd_data_dir", "/var/lib/etcd-b"},
		{"node3", "ansible_user", "deploy"},
	}
	for _, tc := range cases {
		if got, _ := inv.Host(tc.host).Var(tc.name); got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.host, tc.name, got, tc.want)
		}
	}
	if h := inv.Host("node4"); h.Port != 2204 || h.User != "deploy" {
		t.Errorf("node4 %+v", h)
	}
	if p := inv.Host("node2").VarPos["etcd_data_dir"]; p.File != filepath.Join("testdata/varsdirs/group_vars/etcd/b.yaml") || p.Line != 1 {
		t.Errorf("etcd_data_dir from %v", p)
	}
	if inv.Vars["y"] != "gv_all" {
		t.Errorf("all-level y = %q", inv.Vars["y"])
	}
	if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0], filepath.Join("group_vars/etcd/vault.yml")+":1: skipped: encrypted with ansible-vault") {
		t.Errorf("warnings %q", inv.Warnings)
	}
}

func TestBadGroupVarsFile(t *testing.T) {
	_, err := Load("testdata/badvars/hosts")
	want := filepath.Join("testdata/badvars/group_vars/etcd.yml") + ":"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrSyntax) {
		t.Errorf("err = %v, want %s...", err, want)
	}
}
