package restore_test

// End-to-end: a cluster laid out as kubespray deploys it, reached as
// kubespray reaches it. The lab's hosts accept SSH only from its jump host;
// etcd is moved into kubespray's shape (the binaries in /usr/local/bin, the
// unit etcd.service with EnvironmentFile=/etc/etcd.env, the certificates in
// /etc/ssl/etcd/ssl/ named per inventory host, the members etcd1..3); the
// inventory is kubespray's sample, with the jump host as its bastion (a host
// named bastion in group bastion) and no ansible_ssh_common_args: kubespray
// gets the ProxyCommand from its role defaults, ezrestore from its
// convention.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// kubesprayEtcd rewrites etcd on the lab's etcd hosts as kubespray's etcd
// role lays it out (roles/etcd/templates/etcd-host.service.j2, etcd.env.j2),
// then restarts the members under kubespray's names.
func kubesprayEtcd(t *testing.T, l *lab.Lab) {
	t.Helper()
	etcd := l.EtcdHosts()
	var initial []string
	for i, h := range etcd {
		initial = append(initial, fmt.Sprintf("etcd%d=https://%s:2380", i+1, h.Address))
	}
	for i, h := range etcd {
		node := fmt.Sprintf("node%d", i+1)
		env := strings.Join([]string{
			"ETCD_DATA_DIR=/var/lib/etcd",
			"ETCD_ADVERTISE_CLIENT_URLS=https://" + h.Address + ":2379",
			"ETCD_INITIAL_ADVERTISE_PEER_URLS=https://" + h.Address + ":2380",
			"ETCD_INITIAL_CLUSTER_STATE=existing",
			"ETCD_LISTEN_CLIENT_URLS=https://" + h.Address + ":2379",
			"ETCD_INITIAL_CLUSTER_TOKEN=k8s_etcd",
			"ETCD_LISTEN_PEER_URLS=https://" + h.Address + ":2380",
			fmt.Sprintf("ETCD_NAME=etcd%d", i+1),
			"ETCD_PROXY=off",
			"ETCD_INITIAL_CLUSTER=" + strings.Join(initial, ","),
			"ETCD_TRUSTED_CA_FILE=/etc/ssl/etcd/ssl/ca.pem",
			"ETCD_CERT_FILE=/etc/ssl/etcd/ssl/member-" + node + ".pem",
			"ETCD_KEY_FILE=/etc/ssl/etcd/ssl/member-" + node + "-key.pem",
			"ETCD_CLIENT_CERT_AUTH=true",
			"ETCD_PEER_TRUSTED_CA_FILE=/etc/ssl/etcd/ssl/ca.pem",
			"ETCD_PEER_CERT_FILE=/etc/ssl/etcd/ssl/member-" + node + ".pem",
			"ETCD_PEER_KEY_FILE=/etc/ssl/etcd/ssl/member-" + node + "-key.pem",
			"ETCD_PEER_CLIENT_CERT_AUTH=true",
			"ETCDCTL_ENDPOINTS=https://127.0.0.1:2379",
			"ETCDCTL_CACERT=/etc/ssl/etcd/ssl/ca.pem",
			"ETCDCTL_KEY=/etc/ssl/etcd/ssl/admin-" + node + "-key.pem",
			"ETCDCTL_CERT=/etc/ssl/etcd/ssl/admin-" + node + ".pem",
		}, "\n")
		unit := `[Unit]
Description=etcd
After=network.target

[Service]
Type=notify
User=root
EnvironmentFile=/etc/etcd.env
ExecStart=/usr/local/bin/etcd
NotifyAccess=all
Restart=always
RestartSec=10s
LimitNOFILE=40000

[Install]
WantedBy=multi-user.target
`
		ssl := "/etc/ssl/etcd/ssl"
		sh(t, l, h.Address, strings.Join([]string{
			"set -e",
			"systemctl stop etcd",
			"install -d -m 0700 " + ssl,
			"cp " + lab.CADir + "/ca.pem " + ssl + "/ca.pem",
			"for k in member admin; do cp " + lab.CADir + "/etcd.pem " + ssl + "/$k-" + node + ".pem; cp " + lab.CADir + "/etcd-key.pem " + ssl + "/$k-" + node + "-key.pem; done",
			// kubespray's bin_dir; kubeasz's etcd is gone from /opt/kube/bin
			// (the lab's own checks keep its etcdctl there).
			"cp -L " + lab.BinDir + "/etcd " + lab.BinDir + "/etcdctl /usr/local/bin/",
			"rm " + lab.BinDir + "/etcd",
			"printf '%s\\n' '" + env + "' > /etc/etcd.env",
			"chmod 0640 /etc/etcd.env",
			"printf '%s' '" + unit + "' > /etc/systemd/system/etcd.service",
			"systemctl daemon-reload",
		}, "\n"))
	}
	for _, h := range etcd {
		sh(t, l, h.Address, "systemctl start --no-block etcd")
	}
	deadline := time.Now().Add(60 * time.Second)
	for problems := kubesprayHealth(l); len(problems) > 0; problems = kubesprayHealth(l) {
		if time.Now().After(deadline) {
			t.Fatalf("etcd not healthy in kubespray's layout: %s", strings.Join(problems, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// kubesprayHealth is the lab's health check with kubespray's member names
// (etcd1..N by position in group etcd) instead of kubeasz's: what is wrong,
// nothing when every member answers, there is one leader and one cluster
// ID, and every member lists all of them by those names.
func kubesprayHealth(l *lab.Lab) []string {
	h := l.EtcdHealth(context.Background())
	var want []string
	names := map[string]string{}
	for i, e := range l.EtcdHosts() {
		names[e.Address] = fmt.Sprintf("etcd%d", i+1)
		want = append(want, fmt.Sprintf("etcd%d=https://%s:2380", i+1, e.Address))
	}
	sort.Strings(want)
	var problems []string
	leaders, clusters := map[uint64]bool{}, map[uint64]bool{}
	for _, m := range h.Members {
		if m.Err != "" {
			problems = append(problems, m.Address+": "+m.Err)
			continue
		}
		leaders[m.Leader], clusters[m.ClusterID] = true, true
		if m.Name != names[m.Address] {
			problems = append(problems, fmt.Sprintf("%s is member %q, want %s", m.Address, m.Name, names[m.Address]))
		}
		if strings.Join(m.MemberList, " ") != strings.Join(want, " ") {
			problems = append(problems, fmt.Sprintf("%s lists %v, want %v", m.Address, m.MemberList, want))
		}
	}
	if len(leaders) != 1 || leaders[0] || len(clusters) != 1 {
		problems = append(problems, fmt.Sprintf("%d leaders, %d cluster IDs", len(leaders), len(clusters)))
	}
	return problems
}

func TestKubesprayInventoryThroughBastion(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "daytwo-kspray", JumpHost: true, Nodes: 1})
	jump, ok := l.Jump()
	if !ok {
		t.Fatal("lab has no jump host")
	}
	// The hosts refuse a direct login: whatever reaches them below went
	// through the bastion.
	for _, h := range append(l.EtcdHosts(), l.Nodes()...) {
		if out, err := exec.Command("ssh", append(l.DirectSSHArgs(h.Address), "true")...).CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Fatalf("direct ssh to %s: err=%v %s; want a refusal", h.Address, err, out)
		}
	}
	kubesprayEtcd(t, l)
	seedKeys(t, l)

	// The operator's bastion: the key and the recorded host keys in ~/.ssh,
	// as kubespray's own runs use them; nothing of the machine's.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	copyFileT(t, l.Dir.PrivateKey(), filepath.Join(home, ".ssh", "id_ed25519"))
	copyFileT(t, l.Dir.KnownHosts(), filepath.Join(home, ".ssh", "known_hosts"))

	// kubespray's inventory/sample/inventory.ini, filled in: stacked etcd on
	// the control plane, no etcd_member_name (kubespray's etcd1..N), and the
	// bastion as kubespray's docs show it.
	var b strings.Builder
	b.WriteString("[kube_control_plane]\n")
	for i, h := range l.EtcdHosts() {
		fmt.Fprintf(&b, "node%d ansible_host=%s  # ip=%s\n", i+1, h.Address, h.Address)
	}
	b.WriteString("\n[etcd:children]\nkube_control_plane\n\n[kube_node]\n")
	for i, h := range l.Nodes() {
		fmt.Fprintf(&b, "node%d ansible_host=%s\n", len(l.EtcdHosts())+i+1, h.Address)
	}
	fmt.Fprintf(&b, "\n[bastion]\nbastion ansible_host=%s ansible_user=root\n", jump.Address)
	invDir := t.TempDir()
	inv := filepath.Join(invDir, "inventory.ini")
	if err := os.WriteFile(inv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "ansible_ssh_common_args") || strings.Contains(b.String(), "ProxyJump") {
		t.Fatal("the inventory must reach the hosts by kubespray's convention alone")
	}

	// Offline: the route is through the bastion, by kubespray's convention.
	out, err := cliAt(t, l.Opts.Base, "inventory", "-i", inv)
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	requireContains(t, "inventory", out, "kubespray", "/usr/local/bin", "ProxyJump=root@"+jump.Address, "kubespray's role defaults")

	out, err = cliAt(t, l.Opts.Base, "status", "-i", inv)
	if err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("status through the bastion: %v", err)
	}
	// An -i inventory's backups go beside it, in backup/.
	if _, err = cliAt(t, l.Opts.Base, "backup", "-i", inv); err != nil {
		t.Fatalf("backup through the bastion: %v", err)
	}
	snap := filepath.Join(invDir, "backup", "snapshot.db")
	first := l.EtcdHosts()[0].Address
	etcdctl(t, l, first, "del /registry/pods/default/net-test3")
	before := allStates(t, l)
	out, err = cliAt(t, l.Opts.Base, "plan", "-i", inv, "--snapshot", snap)
	if err != nil {
		t.Fatalf("plan through the bastion: %v", err)
	}
	// kubespray's member names, its bin_dir, its certificates from /etc/etcd.env.
	requireContains(t, "plan", out, "--name etcd1 ", "--initial-cluster etcd1=https://"+first+":2380", "/usr/local/bin/etcdctl", "/etc/ssl/etcd/ssl/")
	requireUnchanged(t, l, before, "plan")
	if _, err := cliAt(t, l.Opts.Base, "restore", "-i", inv, "--snapshot", snap, "--yes"); err != nil {
		t.Fatalf("restore through the bastion: %v", err)
	}
	if problems := kubesprayHealth(l); len(problems) > 0 {
		t.Fatalf("not healthy after the restore: %s", strings.Join(problems, "; "))
	}
	for _, h := range l.EtcdHosts() {
		if k := keys(t, l, h.Address); !strings.Contains(k, "/registry/pods/default/net-test3") {
			t.Fatalf("%s: the restored key is not back: %s", h.Address, k)
		}
	}
}
