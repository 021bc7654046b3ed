package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// kubeasz's paths on every host.
const (
	BinDir      = "/opt/kube/bin"
	CADir       = "/etc/kubernetes/ssl"
	EtcdDataDir = "/var/lib/etcd"
)

// hostSecrets is what the lab generated for one boot of the lab.
type hostSecrets struct {
	certs     *certs
	clientKey *sshKey
	hostKeys  map[string]*sshKey // by address
	kubeadm   *kubeadmCerts      // Options.Kubeadm only
}

// etcdUnit renders kubeasz's etcd.service for host h. Unlike kubeasz it does
// not listen on http://127.0.0.1:2379: every host shares the machine's
// network, so only the host's own address is used.
func (l *Lab) etcdUnit(h Host) string {
	var initial []string
	for _, e := range l.EtcdHosts() {
		initial = append(initial, fmt.Sprintf("%s=https://%s:2380", EtcdMemberName(e.Address), e.Address))
	}
	ip := h.Address
	var b strings.Builder
	fmt.Fprintf(&b, `[Unit]
Description=Etcd Server
After=network.target
After=network-online.target
Wants=network-online.target
Documentation=https://github.com/coreos

[Service]
Type=notify
WorkingDirectory=%[1]s
ExecStart=%[2]s/etcd \
  --name=%[3]s \
  --cert-file=%[4]s/etcd.pem \
  --key-file=%[4]s/etcd-key.pem \
  --peer-cert-file=%[4]s/etcd.pem \
  --peer-key-file=%[4]s/etcd-key.pem \
  --trusted-ca-file=%[4]s/ca.pem \
  --peer-trusted-ca-file=%[4]s/ca.pem \
  --client-cert-auth \
  --peer-client-cert-auth \
  --initial-advertise-peer-urls=https://%[5]s:2380 \
  --listen-peer-urls=https://%[5]s:2380 \
  --listen-client-urls=https://%[5]s:2379 \
  --advertise-client-urls=https://%[5]s:2379 \
  --initial-cluster-token=etcd-cluster-0 \
  --initial-cluster=%[6]s \
  --initial-cluster-state=new \
  --data-dir=%[1]s \
`, EtcdDataDir, BinDir, EtcdMemberName(ip), CADir, ip, strings.Join(initial, ","))
	if l.Opts.EtcdWALDir != "" {
		fmt.Fprintf(&b, "  --wal-dir=%s \\\n", l.Opts.EtcdWALDir)
	}
	b.WriteString(`  --snapshot-count=50000 \
  --auto-compaction-retention=1 \
  --auto-compaction-mode=periodic \
  --max-request-bytes=10485760 \
  --quota-backend-bytes=8589934592
Restart=always
RestartSec=2
LimitNOFILE=65536
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`)
	return b.String()
}

// standIn is the program every stand-in Kubernetes unit runs: it lives
// until stopped (kubelet and kube-proxy always; the control plane with
// KubeStandIn).
const standIn = `#!/bin/sh
# ezrestore lab: a stand-in for a Kubernetes component (the lab has no
# container runtime, or was brought up with --kube stand-in). It only stays
# alive until stopped.
trap 'exit 0' TERM INT
while :; do
	sleep 3600 &
	wait $!
done
`

func kubeUnit(name string) string {
	return fmt.Sprintf(`[Unit]
Description=Kubernetes %[1]s (ezrestore lab stand-in)
After=network.target etcd.service

[Service]
ExecStart=%[2]s/%[1]s
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`, name, BinDir)
}

func sshdConfig(ip string) string {
	return fmt.Sprintf(`# ezrestore lab: this host shares the machine's network; sshd listens on its own address only.
ListenAddress %s:22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
`, ip)
}

// writeHostFiles writes everything host-specific into the host's root (the
// mounted overlay, so files are copied up with the base's owners and modes).
func (l *Lab) writeHostFiles(h Host, root string, s *hostSecrets, etcdBin string) error {
	p := func(rel string) string { return filepath.Join(root, rel) }
	mid := make([]byte, 16)
	if _, err := rand.Read(mid); err != nil {
		return err
	}
	files := []struct {
		rel  string
		data string
		mode os.FileMode
	}{
		{"etc/hostname", h.Machine + "\n", 0o644},
		{"etc/hosts", fmt.Sprintf("127.0.0.1\tlocalhost\n%s\t%s\n", h.Address, h.Machine), 0o644},
		{"etc/machine-id", hex.EncodeToString(mid) + "\n", 0o444},
		{"etc/ssh/ssh_host_ed25519_key", string(s.hostKeys[h.Address].Private), 0o600},
		{"etc/ssh/ssh_host_ed25519_key.pub", s.hostKeys[h.Address].Public + " root@" + h.Machine + "\n", 0o644},
		{"etc/ssh/sshd_config.d/ezrestore-lab.conf", sshdConfig(h.Address), 0o644},
		{"root/.ssh/authorized_keys", s.clientKey.Public + " ezrestore-lab\n", 0o600},
		{"home/ops/.ssh/authorized_keys", s.clientKey.Public + " ezrestore-lab\n", 0o600},
		{"etc/kubernetes/ssl/ca.pem", string(s.certs.CA), 0o644},
		{"etc/kubernetes/ssl/etcd.pem", string(s.certs.Etcd), 0o644},
		{"etc/kubernetes/ssl/etcd-key.pem", string(s.certs.EtcdKey), 0o600},
	}
	for _, f := range files {
		if h.Kubeadm && strings.HasPrefix(f.rel, "etc/kubernetes/ssl/") {
			continue // kubeadm's hosts have no kubeasz ssl dir
		}
		if err := writeFile(p(f.rel), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		rel  string
		mode os.FileMode
	}{{"root/.ssh", 0o700}, {"home/ops/.ssh", 0o700}, {"etc/kubernetes/ssl", 0o700}} {
		if h.Kubeadm && d.rel == "etc/kubernetes/ssl" {
			continue
		}
		if err := os.Chmod(p(d.rel), d.mode); err != nil {
			return err
		}
	}
	// ops is uid and gid 1000 in the base.
	for _, rel := range []string{"home/ops/.ssh", "home/ops/.ssh/authorized_keys"} {
		if err := os.Lchown(p(rel), 1000, 1000); err != nil {
			return err
		}
	}
	units := p("etc/systemd/system")
	wants := filepath.Join(units, "multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	enable := func(unit string) error {
		link := filepath.Join(wants, unit+".service")
		_ = os.Remove(link)
		return os.Symlink("/etc/systemd/system/"+unit+".service", link)
	}
	etcdUnitPath := filepath.Join(units, "etcd.service")
	_ = os.Remove(etcdUnitPath)
	if h.Kubeadm {
		// etcd is a static pod; Debian's etcd.service is masked.
		if err := os.Symlink("/dev/null", etcdUnitPath); err != nil {
			return err
		}
		return l.writeKubeadmHost(h, root, s, etcdBin)
	}
	if h.In("etcd") {
		if err := writeFile(etcdUnitPath, []byte(l.etcdUnit(h)), 0o644); err != nil {
			return err
		}
		if err := enable("etcd"); err != nil {
			return err
		}
		if err := installEtcd(p(BinDir), etcdBin); err != nil {
			return err
		}
	} else if err := os.Symlink("/dev/null", etcdUnitPath); err != nil {
		// Not an etcd host: Debian's etcd.service is masked.
		return err
	}
	if l.realKube() && h.In("kube_master") {
		if err := l.writeKubeMaster(h, root, s, l.KubeBin); err != nil {
			return err
		}
	}
	for _, u := range h.KubeUnits() {
		if l.realKube() && isControlPlane(u) {
			if err := enable(u); err != nil {
				return err
			}
			continue
		}
		if err := writeFile(filepath.Join(p(BinDir), u), []byte(standIn), 0o755); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(units, u+".service"), []byte(kubeUnit(u)), 0o644); err != nil {
			return err
		}
		if err := enable(u); err != nil {
			return err
		}
	}
	return l.writeJumpFiles(h, root)
}

// installEtcd puts etcd, etcdctl and (when the build has it) etcdutl into
// the host's bin dir: links to Debian's binaries for 3.4 (etcdBin == ""),
// copies of the cached build otherwise.
func installEtcd(binDir, etcdBin string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"etcd", "etcdctl", "etcdutl"} {
		dst := filepath.Join(binDir, name)
		_ = os.Remove(dst)
		if etcdBin == "" {
			if name == "etcdutl" {
				continue
			}
			if err := os.Symlink("/usr/bin/"+name, dst); err != nil {
				return err
			}
			continue
		}
		src := filepath.Join(etcdBin, name)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if err := copyFile(src, dst, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
