package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBlockForIsStableAndOnLoopback(t *testing.T) {
	seen := map[string]string{}
	for _, n := range []string{"t1", "t2", "demo", "bench", "e2e-restore", "lab"} {
		b := blockFor(n)
		if b != blockFor(n) {
			t.Fatalf("blockFor(%q) changes", n)
		}
		var x, y int
		if _, err := fmt.Sscanf(b, "127.%d.%d", &x, &y); err != nil || x < 16 || x > 254 || y < 0 || y > 255 {
			t.Fatalf("blockFor(%q) = %s, want 127.[16-254].[0-255]", n, b)
		}
		if other, ok := seen[b]; ok {
			t.Fatalf("%q and %q share block %s", n, other, b)
		}
		seen[b] = n
	}
}

func TestTopology(t *testing.T) {
	o := Options{Name: "x", Base: "/tmp/b"}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	l := &Lab{Opts: o, Hosts: topology(o)}
	if len(l.Hosts) != 5 || len(l.EtcdHosts()) != 3 || len(l.Masters()) != 3 || len(l.Nodes()) != 2 {
		t.Fatalf("default topology: %+v", l.Hosts)
	}
	for i, h := range l.EtcdHosts() {
		if l.Masters()[i].Address != h.Address {
			t.Fatalf("etcd and masters differ without --separate-etcd")
		}
	}
	o = Options{Name: "x", Base: "/tmp/b", Etcd: 5, SeparateEtcd: true, Nodes: -1}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	l = &Lab{Opts: o, Hosts: topology(o)}
	if len(l.Hosts) != 7 || len(l.EtcdHosts()) != 5 || len(l.Masters()) != 2 || len(l.Nodes()) != 0 {
		t.Fatalf("separate topology: %+v", l.Hosts)
	}
	for _, h := range l.EtcdHosts() {
		if h.In("kube_master") {
			t.Fatalf("separate etcd host %s is a master", h.Address)
		}
	}
	for _, bad := range []Options{{Name: "UP"}, {Name: "x", Etcd: 2}, {Name: "x", EtcdVersion: "3.3"}, {Name: strings.Repeat("a", 21)}} {
		if err := bad.normalize(); err == nil {
			t.Errorf("normalize(%+v) accepted", bad)
		}
	}
}

func TestEtcdUnitIsKubeaszsOnOwnAddressOnly(t *testing.T) {
	o := Options{Name: "x", Base: "/tmp/b"}
	_ = o.normalize()
	l := &Lab{Opts: o, Hosts: topology(o)}
	h := l.EtcdHosts()[1]
	u := l.etcdUnit(h)
	for _, want := range []string{
		"Type=notify", "WorkingDirectory=/var/lib/etcd", "ExecStart=/opt/kube/bin/etcd",
		"--name=etcd-" + h.Address, "--client-cert-auth", "--peer-client-cert-auth",
		"--listen-client-urls=https://" + h.Address + ":2379 ",
		"--initial-cluster-token=etcd-cluster-0", "--initial-cluster-state=new",
		"--data-dir=/var/lib/etcd", "Restart=always", "RestartSec=2", "LimitNOFILE=65536",
		"etcd-" + l.EtcdHosts()[0].Address + "=https://" + l.EtcdHosts()[0].Address + ":2380",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if strings.Contains(u, "127.0.0.1") || strings.Contains(u, "--wal-dir") {
		t.Errorf("unit listens on 127.0.0.1 or has a WAL dir:\n%s", u)
	}
}

func TestHostsINI(t *testing.T) {
	o := Options{Name: "x", Base: "/tmp/b"}
	_ = o.normalize()
	l := &Lab{Opts: o, Hosts: topology(o)}
	l.Dir.Base, l.Dir.Name, l.Dir.Path = "/tmp/b", "x", "/tmp/b/clusters/x"
	ini := l.hostsINI()
	for _, want := range []string{
		"[etcd]\n" + l.Hosts[0].Address + "\n", "[kube_node]\n" + l.Hosts[3].Address + "\n",
		"ansible_user=root\n",
		"ansible_ssh_private_key_file=/tmp/b/clusters/x/ssh/id_ed25519\n",
		`ansible_ssh_common_args="-o UserKnownHostsFile=/tmp/b/clusters/x/ssh/known_hosts -o StrictHostKeyChecking=yes"` + "\n",
		`bin_dir="/opt/kube/bin"`, `base_dir="/tmp/b"`, `cluster_dir="{{ base_dir }}/clusters/x"`, `ca_dir="/etc/kubernetes/ssl"`,
	} {
		if !strings.Contains(ini, want) {
			t.Errorf("hosts lacks %q:\n%s", want, ini)
		}
	}
}

// The lab embeds lab/etcdbuild's files; they must not drift apart.
func TestEtcdbuildSourcesMatch(t *testing.T) {
	for name, want := range etcdbuildFiles {
		got, err := os.ReadFile(filepath.Join("etcdbuild", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("lab/etcdbuild/%s differs from etcdbuildFiles[%q] in etcd.go", name, name)
		}
	}
}

func TestBaseHashFollowsRecipe(t *testing.T) {
	h := BaseHash()
	old := basePackages
	basePackages = append(append([]string{}, old...), "extra")
	defer func() { basePackages = old }()
	if BaseHash() == h {
		t.Fatal("base hash ignores the package list")
	}
}

func TestEtcdWALDir(t *testing.T) {
	o := Options{Name: "x", Base: "/tmp/b", EtcdWALDir: "/var/lib/etcd-wal"}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	l := &Lab{Opts: o, Hosts: topology(o)}
	if u := l.etcdUnit(l.Hosts[0]); !strings.Contains(u, "--wal-dir=/var/lib/etcd-wal \\\n") {
		t.Errorf("unit lacks --wal-dir:\n%s", u)
	}
	if c := l.configYML(); !strings.Contains(c, `ETCD_WAL_DIR: "/var/lib/etcd-wal"`) {
		t.Errorf("config.yml:\n%s", c)
	}
	for _, bad := range []string{"wal", "/var/lib/etcd", "/var/lib/etcd/member/wal"} {
		o := Options{Name: "x", EtcdWALDir: bad}
		if err := o.normalize(); err == nil {
			t.Errorf("WAL dir %q accepted", bad)
		}
	}
}

// A hundred workers fit the lab's block; more than MaxNodes do not.
func TestNodesBound(t *testing.T) {
	o := Options{Name: "many", Nodes: 100}
	if err := o.normalize(); err != nil {
		t.Fatalf("100 workers: %v", err)
	}
	hosts := topology(o)
	if len(hosts) != 103 {
		t.Fatalf("%d hosts, want 3 etcd/masters + 100 workers", len(hosts))
	}
	last := hosts[len(hosts)-1].Address
	if !strings.HasSuffix(last, ".113") {
		t.Errorf("last host at %s", last)
	}
	o = Options{Name: "toomany", Nodes: MaxNodes + 1}
	if err := o.normalize(); err == nil {
		t.Errorf("%d workers accepted", MaxNodes+1)
	}
}
