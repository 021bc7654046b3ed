package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// hostsINI renders the kubeasz inventory of the lab.
func (l *Lab) hostsINI() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ezrestore lab %q: kubeasz inventory written by `ezrestore lab up`.\n", l.Opts.Name)
	if l.realKube() {
		fmt.Fprintf(&b, "# kube-apiserver, kube-controller-manager and kube-scheduler are real (v%s); kubelet and kube-proxy are stand-ins; etcd, sshd and systemd are real.\n", KubeVersion)
	} else {
		b.WriteString("# The Kubernetes components on these hosts are stand-ins; etcd, sshd and systemd are real.\n")
	}
	for _, g := range []struct{ name, comment string }{
		{"etcd", "# 'etcd' cluster should have odd member(s) (1,3,5,...)"},
		{"kube_master", "# master node(s)"},
		{"kube_node", "# work node(s)"},
	} {
		fmt.Fprintf(&b, "\n%s\n[%s]\n", g.comment, g.name)
		for _, h := range l.group(g.name) {
			b.WriteString(h.Address + "\n")
		}
	}
	d := l.Dir
	fmt.Fprintf(&b, `
[all:vars]
ansible_user=root
ansible_ssh_private_key_file=%s
ansible_ssh_common_args="%s"
# Binaries Directory
bin_dir="%s"
# Deploy Directory (kubeasz workspace)
base_dir="%s"
# Directory for a specific cluster
cluster_dir="{{ base_dir }}/clusters/%s"
# CA and other components cert/key Directory
ca_dir="%s"
# k8s secure port, Service and Pod networks (kubeasz's defaults)
SECURE_PORT="%d"
SERVICE_CIDR="%s"
CLUSTER_CIDR="%s"
NODE_PORT_RANGE="%s"
`, d.PrivateKey(), l.sshCommonArgs(), BinDir, d.Base, d.Name, CADir, KubeSecurePort, ServiceCIDR, ClusterCIDR, NodePortRange)
	return b.String()
}

func (l *Lab) configYML() string {
	return fmt.Sprintf(`# ezrestore lab: the kubeasz config.yml entries that concern etcd.
# [etcd] data dir
ETCD_DATA_DIR: "%s"
# [etcd] separate WAL dir; empty keeps the WAL under the data dir
ETCD_WAL_DIR: "%s"
`, EtcdDataDir, l.Opts.EtcdWALDir)
}

// labFiles are the files of the cluster dir that the lab makes (and removes on down).
func (l *Lab) labFiles() []string {
	d := l.Dir
	return []string{d.Hosts(), d.Config(), d.PrivateKey(), d.PrivateKey() + ".pub", d.KnownHosts(),
		filepath.Join(d.SSLDir(), "ca.pem"), filepath.Join(d.SSLDir(), "ca-key.pem"),
		filepath.Join(d.SSLDir(), "etcd.pem"), filepath.Join(d.SSLDir(), "etcd-key.pem"),
		filepath.Join(d.SSLDir(), "admin.pem"), filepath.Join(d.SSLDir(), "admin-key.pem"), l.KubeconfigPath()}
}

// writeClusterDir writes the kubeasz cluster dir: hosts, config.yml, ssh/, ssl/.
func (l *Lab) writeClusterDir(s *hostSecrets) error {
	d := l.Dir
	// The base and clusters/ stay traversable; the cluster dir holds keys.
	if err := os.MkdirAll(filepath.Join(d.Base, "clusters"), 0o755); err != nil {
		return err
	}
	for _, dir := range []string{d.Path, d.SSHDir(), d.SSLDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	hostsINI := l.hostsINI()
	if l.kubeadm() {
		hostsINI = l.kubeadmHostsINI()
	}
	var kh strings.Builder
	for _, h := range l.Hosts {
		fmt.Fprintf(&kh, "%s %s\n", h.Address, s.hostKeys[h.Address].Public)
	}
	files := []struct {
		path string
		data []byte
	}{
		{d.Hosts(), []byte(hostsINI)},
		{d.Config(), []byte(l.configYML())},
		{d.PrivateKey(), s.clientKey.Private},
		{d.PrivateKey() + ".pub", []byte(s.clientKey.Public + " ezrestore-lab\n")},
		{d.KnownHosts(), []byte(kh.String())},
		{filepath.Join(d.SSLDir(), "ca.pem"), s.certs.CA},
		{filepath.Join(d.SSLDir(), "ca-key.pem"), s.certs.CAKey},
		{filepath.Join(d.SSLDir(), "etcd.pem"), s.certs.Etcd},
		{filepath.Join(d.SSLDir(), "etcd-key.pem"), s.certs.EtcdKey},
	}
	if k := s.certs.Kube; k != nil {
		cert, key := l.adminCertPaths()
		files = append(files, []struct {
			path string
			data []byte
		}{
			{cert, k.Admin.Cert}, {key, k.Admin.Key},
			{l.KubeconfigPath(), []byte(kubeconfig(l.Opts.Name, apiURL(l.Masters()[0].Address), "admin", s.certs.CA, k.Admin))},
		}...)
	}
	for _, f := range files {
		if err := writeFile(f.path, f.data, 0o600); err != nil {
			return err
		}
	}
	if l.realKube() {
		return l.installKubectl()
	}
	return nil
}

// removeClusterDir removes the lab's files from the cluster dir, then the
// dirs the lab made if nothing else is left in them (backup/ and restores/
// that others wrote there are kept).
func (l *Lab) removeClusterDir() {
	for _, f := range l.labFiles() {
		_ = os.Remove(f)
	}
	l.removeKubectl()
	for _, dir := range []string{l.Dir.SSHDir(), l.Dir.SSLDir(), l.Dir.Path} {
		_ = os.Remove(dir) // only succeeds when empty
	}
}
