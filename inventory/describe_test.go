package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDescribeKubeasz(t *testing.T) {
	dir := NewClusterDir("testdata/kubeasz", "k8s-01")
	inv, err := LoadCluster(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := Describe(inv)
	if d.Cluster != "k8s-01" || d.Style != StyleKubeasz || len(d.Hosts) != 4 || d.Error != "" || d.Warnings == nil {
		t.Fatalf("description %+v", d)
	}
	// The tree: all -> etcd, kube_master, kube_node, harbor, ex_lb, chrony.
	var top []string
	for _, g := range d.Groups.Children {
		top = append(top, g.Name)
	}
	if want := []string{"etcd", "kube_master", "kube_node", "harbor", "ex_lb", "chrony"}; d.Groups.Name != "all" || !reflect.DeepEqual(top, want) {
		t.Errorf("groups under %s: %v, want %v", d.Groups.Name, top, want)
	}
	if g := d.Groups.Children[0]; g.DefinedAt != dir.Hosts()+":2" || !reflect.DeepEqual(g.Hosts, []string{"192.168.1.1", "192.168.1.2", "192.168.1.3"}) {
		t.Errorf("etcd group %+v", g)
	}
	h := d.Hosts[0]
	hosts := dir.Hosts()
	checks := []struct {
		name      string
		got, want any
	}{
		{"address", h.Address, Setting[string]{Value: "192.168.1.1", From: FromDefault}},
		{"port", h.Port, Setting[int]{Value: 22, From: FromDefault}},
		{"user", h.User, Setting[string]{Value: "root", From: FromDefault}},
		{"become", h.Become, Setting[bool]{Value: false, From: FromDefault}},
		{"key", h.KeyFile, Setting[string]{From: FromUnset}},
		{"bin_dir", h.BinDir, Setting[string]{Value: "/opt/kube/bin", Var: "bin_dir", From: hosts + ":31"}},
		{"member", h.Etcd.MemberName, Setting[string]{Value: "etcd-192.168.1.1", From: FromDefault}},
		{"peer", h.Etcd.PeerURL, Setting[string]{Value: "https://192.168.1.1:2380", From: FromDefault}},
		{"data", h.Etcd.DataDir, Setting[string]{Value: "/var/lib/etcd", Var: "ETCD_DATA_DIR", From: dir.Config() + ":21"}},
		{"wal", h.Etcd.WALDir, Setting[string]{Value: "", Var: "ETCD_WAL_DIR", From: dir.Config() + ":22"}},
		{"defined", h.DefinedAt, hosts + ":3"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %+v, want %+v", c.name, c.got, c.want)
		}
	}
	if d.Hosts[3].Etcd != nil {
		t.Errorf("a host outside etcd has etcd settings: %+v", d.Hosts[3].Etcd)
	}
}

func TestDescribeKubespraySources(t *testing.T) {
	path := writeFile(t, t.TempDir(), "hosts.yaml", `all:
  hosts:
    n1: {ansible_host: 10.0.0.1, ip: 10.0.0.1, ansible_ssh_common_args: "-o ProxyJump=ops@10.0.0.9"}
    n2: {ansible_host: 10.0.0.2, etcd_peer_url: "https://e2:2380", etcd_member_name: two}
  vars:
    ansible_ssh_user: ubuntu
    ansible_become: "yes"
  children:
    etcd: {hosts: {n1: , n2: }, vars: {etcd_data_dir: /data/etcd}}
    kube_control_plane: {hosts: {n1: }}
`)
	extra, err := ParseExtraVars([]string{"ansible_port=2200"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := LoadWithVars(path, extra)
	if err != nil {
		t.Fatal(err)
	}
	d := Describe(inv)
	n1, n2 := d.Hosts[0], d.Hosts[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"n1 user", n1.User, Setting[string]{Value: "ubuntu", Var: "ansible_ssh_user", From: path + ":6"}},
		{"n1 port", n1.Port, Setting[int]{Value: 2200, Var: "ansible_port", From: "-e ansible_port=2200"}},
		{"n1 become", n1.Become, Setting[bool]{Value: true, Var: "ansible_become", From: path + ":7"}},
		{"n1 ssh args", n1.SSHCommonArgs, Setting[string]{Value: "-o ProxyJump=ops@10.0.0.9", Var: "ansible_ssh_common_args", From: path + ":3"}},
		{"n1 member", n1.Etcd.MemberName, Setting[string]{Value: "etcd1", From: FromDefault}},
		{"n1 peer", n1.Etcd.PeerURL, Setting[string]{Value: "https://10.0.0.1:2380", Var: "ip", From: path + ":3"}},
		{"n1 data", n1.Etcd.DataDir, Setting[string]{Value: "/data/etcd", Var: "etcd_data_dir", From: path + ":9"}},
		{"n1 wal", n1.Etcd.WALDir, Setting[string]{From: FromUnset}},
		{"n2 member", n2.Etcd.MemberName, Setting[string]{Value: "two", Var: "etcd_member_name", From: path + ":4"}},
		{"n2 peer", n2.Etcd.PeerURL, Setting[string]{Value: "https://e2:2380", Var: "etcd_peer_url", From: path + ":4"}},
		// No ip: kubespray takes the host's default address, whose
		// offline stand-in is ansible_host.
		{"n2 client", n2.Etcd.ClientURL, Setting[string]{Value: "https://10.0.0.2:2379", From: FromDefault}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %+v, want %+v", c.name, c.got, c.want)
		}
	}
	// One kubespray warning (n1 has no etcd_member_name), an even count.
	if len(d.Warnings) != 2 {
		t.Errorf("warnings %q", d.Warnings)
	}
}

// Members that cannot all be listed still describe, with the error said.
func TestDescribeErrors(t *testing.T) {
	inv := mustLoad(t, "testdata/bad/dup_member.ini")
	d := Describe(inv)
	if !strings.Contains(d.Error, "have the same name etcd1") || len(d.Hosts) != 3 {
		t.Errorf("error %q, %d hosts", d.Error, len(d.Hosts))
	}
	inv = mustLoad(t, "testdata/bad/bad_peer_url.ini")
	d = Describe(inv)
	if d.Hosts[0].Etcd.Error == "" || d.Error == "" {
		t.Errorf("bad peer URL not reported: %+v %q", d.Hosts[0].Etcd, d.Error)
	}
	var b bytes.Buffer
	if err := d.WriteText(&b); err != nil || !strings.Contains(b.String(), "Error: testdata/bad/bad_peer_url.ini:2: etcd_peer_url of host 10.0.0.1 must be a URL") {
		t.Errorf("text %v:\n%s", err, b.String())
	}
}

// JSON and YAML keys are snake_case throughout, and both round-trip.
func TestDescriptionEncodings(t *testing.T) {
	inv := mustLoad(t, "testdata/ini/features.ini")
	d := Describe(inv)
	d.Hosts[0].Reach = map[string]string{"jump": "bastion"}
	j, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if !snake.MatchString(k) && !strings.HasPrefix(path, "/hosts/reach") {
					t.Errorf("key %s/%s is not snake_case", path, k)
				}
				walk(path+"/"+k, e)
			}
		case []any:
			for _, e := range x {
				walk(path, e)
			}
		}
	}
	var jv, yv any
	if err := json.Unmarshal(j, &jv); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(y, &yv); err != nil {
		t.Fatal(err)
	}
	walk("", jv)
	walk("", yv)
	for _, want := range []string{`"member_name":{"value":"etcd4","from":"default"}`, `"defined_at":"testdata/ini/features.ini:11"`, `"reach":{"jump":"bastion"}`, `"become_user":{"value":"admin","var":"ansible_become_user","from":"testdata/ini/features.ini:10"}`} {
		if !bytes.Contains(j, []byte(want)) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	var back Description
	if err := yaml.Unmarshal(y, &back); err != nil || back.Hosts[6].BecomeUser.Value != "admin" || back.Hosts[6].Port.Value != 2200 {
		t.Errorf("YAML round trip: %v %+v", err, back.Hosts[6])
	}
}

type reachText string

func (r reachText) String() string { return string(r) }

func TestDescriptionText(t *testing.T) {
	inv := mustLoad(t, "testdata/ini/features.ini")
	d := Describe(inv)
	d.Hosts[1].Reach = reachText("via bastion (ssh_config:3)")
	var b bytes.Buffer
	if err := d.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// The graph as ansible-inventory --graph draws it.
	graph := `@all:
  |--@ungrouped:
  |  |--bastion.example.lan
  |--@etcd:
  |  |--etcd1.example.lan
  |  |--etcd2.example.lan
  |  |--etcd3.example.lan
  |  |--10.0.1.7
  |  |--10.0.1.8
  |--@empty_group:
  |--@k8s_cluster:
  |  |--@kube_master:
  |  |  |--master-a
  |  |  |--master-b
  |  |  |--ctl01
  |  |  |--ctl02
  |  |--@kube_node:
  |  |  |--node08
  |  |  |--node10
  |  |  |--master-a
`
	if !strings.Contains(out, graph) {
		t.Errorf("no graph in\n%s", out)
	}
	lines := regexp.MustCompile(`\s+`)
	for _, want := range []string{
		// A kubespray-style inventory without bin_dir gets kubespray's.
		"ctl01 ctl01 2222 deploy user no /keys/id ed25519 /usr/local/bin kube_master,k8s_cluster",
		"master-a master-a 2200 root yes (admin) - /usr/local/bin kube_master,kube_node,k8s_cluster",
		"ctl01 bin_dir bin_dir kubespray's role defaults (roles/kubespray_defaults)",
		"etcd4 10.0.1.7 https://10.0.1.7:2380 https://10.0.1.7:2379 (from the unit) (from the unit)",
		"ctl01 key_file ansible_ssh_private_key_file testdata/ini/features.ini:11",
		"Reach etcd1.example.lan: via bastion (ssh_config:3)",
		"- testdata/ini/features.ini:3: host bastion.example.lan is in no group",
	} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.TrimSpace(lines.ReplaceAllString(l, " ")) == want || strings.HasPrefix(strings.TrimSpace(lines.ReplaceAllString(l, " ")), want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line %q in\n%s", want, out)
		}
	}
}

func TestListClusters(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, files map[string]string) ClusterDir {
		d := NewClusterDir(base, name)
		for f, c := range files {
			writeFile(t, d.Path, f, c)
		}
		if len(files) == 0 {
			if err := os.MkdirAll(d.Path, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	src, err := os.ReadFile("testdata/kubeasz/clusters/k8s-01/hosts")
	if err != nil {
		t.Fatal(err)
	}
	good := mk("k8s-01", map[string]string{"hosts": string(src), "backup/snapshot_202601010000.db": "a",
		"backup/snapshot_202601020000.db": "b", "backup/snapshot.db": "b", "backup/snapshot_202601020000.db.json": "{}"})
	older, newer := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for p, tm := range map[string]time.Time{"snapshot_202601010000.db": older, "snapshot_202601020000.db": newer, "snapshot.db": newer.Add(time.Hour)} {
		if err := os.Chtimes(filepath.Join(good.BackupDir(), p), tm, tm); err != nil {
			t.Fatal(err)
		}
	}
	mk("broken", map[string]string{"hosts": "[etcd\n10.0.0.1\n"})
	mk("even", map[string]string{"hosts": "[etcd]\na\nb\n"})
	mk("empty", nil)
	writeFile(t, filepath.Join(base, "clusters"), "not-a-dir", "x")
	mk(".hidden", nil)

	got, err := ListClusters(base)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if want := []string{"broken", "empty", "even", "k8s-01"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("clusters %v, want %v", names, want)
	}
	br, em, ev, k := got[0], got[1], got[2], got[3]
	if !k.HostsFile || k.EtcdHosts != 3 || k.Style != StyleKubeasz || k.Backups != 2 || k.LastBackup == nil || !k.LastBackup.Equal(newer) ||
		k.LastBackupFile != filepath.Join(good.BackupDir(), "snapshot_202601020000.db") || k.Error != "" {
		t.Errorf("k8s-01 %+v", k)
	}
	if !br.HostsFile || br.EtcdHosts != 0 || !strings.Contains(br.Error, "hosts:1: section header [etcd has no closing ]") {
		t.Errorf("broken %+v", br)
	}
	if em.HostsFile || em.Backups != 0 || em.LastBackup != nil || em.Error != "" {
		t.Errorf("empty %+v", em)
	}
	if ev.EtcdHosts != 2 || len(ev.Warnings) != 1 {
		t.Errorf("even %+v", ev)
	}
	var b bytes.Buffer
	if err := WriteClustersText(&b, got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no hosts file", "section header [etcd has no closing ]", "1 warning(s): ezrestore inventory even"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	if _, err := ListClusters(filepath.Join(base, "nope")); err == nil || !strings.Contains(err.Error(), "is --base") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing base: %v", err)
	}
}
