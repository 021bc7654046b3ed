package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// How the lab runs Kubernetes' control plane on masters.
const (
	// KubeStandIn runs stand-ins: units with the real names that only stay
	// alive (see standIn). Light; for tests that do not need the API.
	KubeStandIn = "stand-in"
	// KubeReal runs the real kube-apiserver, kube-controller-manager and
	// kube-scheduler of KubeVersion. kubelet and kube-proxy stay stand-ins:
	// the lab has no container runtime.
	KubeReal = "real"
)

// Ports the real control plane listens on, each on the master's own
// address only: the hosts share one network namespace, so a wildcard or
// 127.0.0.1 listener of one master would collide with the others'.
const (
	controllerManagerPort = 10257
	schedulerPort         = 10259
)

// kubeOnHost is where a master sees the cached kube build: the cache dir
// bound read-only over this dir of its root, so the three masters share
// one file (and one copy of it in the page cache) and cannot alter it.
var kubeOnHost = "/opt/kube/kube-v" + KubeVersion

// The kubeconfigs kubeasz puts on masters.
const (
	controllerManagerKubeconfig = "/etc/kubernetes/kube-controller-manager.kubeconfig"
	schedulerKubeconfig         = "/etc/kubernetes/kube-scheduler.kubeconfig"
)

// realKube reports whether the lab runs the real control plane.
func (l *Lab) realKube() bool { return l.Opts.Kube == KubeReal }

// isControlPlane reports whether unit is one the real control plane replaces.
func isControlPlane(unit string) bool {
	return unit == "kube-apiserver" || unit == "kube-controller-manager" || unit == "kube-scheduler"
}

func (l *Lab) etcdEndpoints() string {
	var eps []string
	for _, e := range l.EtcdHosts() {
		eps = append(eps, "https://"+e.Address+":2379")
	}
	return strings.Join(eps, ",")
}

// apiserverUnit is kubeasz's kube-apiserver.service for master h, less
// what needs kubelets or an aggregated API (no kubelet runs here).
func (l *Lab) apiserverUnit(h Host) string {
	return fmt.Sprintf(`[Unit]
Description=Kubernetes API Server (ezrestore lab: real, v%[6]s)
Documentation=https://github.com/GoogleCloudPlatform/kubernetes
After=network.target etcd.service

[Service]
ExecStart=%[1]s/kube-apiserver \
  --allow-privileged=true \
  --anonymous-auth=false \
  --advertise-address=%[2]s \
  --authorization-mode=Node,RBAC \
  --bind-address=%[2]s \
  --client-ca-file=%[3]s/ca.pem \
  --endpoint-reconciler-type=lease \
  --etcd-cafile=%[3]s/ca.pem \
  --etcd-certfile=%[3]s/kubernetes.pem \
  --etcd-keyfile=%[3]s/kubernetes-key.pem \
  --etcd-servers=%[4]s \
  --encryption-provider-config=%[9]s \
  --secure-port=%[5]d \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-signing-key-file=%[3]s/ca-key.pem \
  --service-account-key-file=%[3]s/ca.pem \
  --service-cluster-ip-range=%[7]s \
  --service-node-port-range=%[8]s \
  --tls-cert-file=%[3]s/kubernetes.pem \
  --tls-private-key-file=%[3]s/kubernetes-key.pem \
  --v=1
Restart=always
RestartSec=5
Type=notify
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`, BinDir, h.Address, CADir, l.etcdEndpoints(), KubeSecurePort, KubeVersion, ServiceCIDR, NodePortRange, EncryptionConfigPath)
}

func controllerManagerUnit(h Host) string {
	return fmt.Sprintf(`[Unit]
Description=Kubernetes Controller Manager (ezrestore lab: real, v%[6]s)
Documentation=https://github.com/GoogleCloudPlatform/kubernetes
After=kube-apiserver.service

[Service]
ExecStart=%[1]s/kube-controller-manager \
  --allocate-node-cidrs=true \
  --authentication-kubeconfig=%[4]s \
  --authorization-kubeconfig=%[4]s \
  --bind-address=%[2]s \
  --secure-port=%[5]d \
  --cluster-cidr=%[7]s \
  --cluster-name=kubernetes \
  --cluster-signing-cert-file=%[3]s/ca.pem \
  --cluster-signing-key-file=%[3]s/ca-key.pem \
  --kubeconfig=%[4]s \
  --leader-elect=true \
  --node-cidr-mask-size=24 \
  --root-ca-file=%[3]s/ca.pem \
  --service-account-private-key-file=%[3]s/ca-key.pem \
  --service-cluster-ip-range=%[8]s \
  --use-service-account-credentials=true \
  --v=1
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`, BinDir, h.Address, CADir, controllerManagerKubeconfig, controllerManagerPort, KubeVersion, ClusterCIDR, ServiceCIDR)
}

func schedulerUnit(h Host) string {
	return fmt.Sprintf(`[Unit]
Description=Kubernetes Scheduler (ezrestore lab: real, v%[5]s)
Documentation=https://github.com/GoogleCloudPlatform/kubernetes
After=kube-apiserver.service

[Service]
ExecStart=%[1]s/kube-scheduler \
  --authentication-kubeconfig=%[3]s \
  --authorization-kubeconfig=%[3]s \
  --bind-address=%[2]s \
  --secure-port=%[4]d \
  --kubeconfig=%[3]s \
  --leader-elect=true \
  --v=1
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`, BinDir, h.Address, schedulerKubeconfig, schedulerPort, KubeVersion)
}

// apiURL is the apiserver's URL on master addr.
func apiURL(addr string) string { return fmt.Sprintf("https://%s:%d", addr, KubeSecurePort) }

// writeKubeMaster writes the real control plane's files into master h's
// root: certificates, kubeconfigs (each pointing at the master's own
// apiserver), the three units, root's ~/.kube/config as kubeasz leaves it,
// and links in the bin dir to the cached build, which it binds read-only
// into the root (kubeDir is the cache dir, see EnsureKube).
func (l *Lab) writeKubeMaster(h Host, root string, s *hostSecrets, kubeDir string) error {
	p := func(rel string) string { return filepath.Join(root, rel) }
	k := s.certs.Kube
	self := apiURL(h.Address)
	files := []struct {
		rel  string
		data []byte
		mode os.FileMode
	}{
		{"etc/kubernetes/ssl/ca-key.pem", s.certs.CAKey, 0o600},
		{"etc/kubernetes/ssl/kubernetes.pem", k.Kubernetes.Cert, 0o644},
		{"etc/kubernetes/ssl/kubernetes-key.pem", k.Kubernetes.Key, 0o600},
		{strings.TrimPrefix(controllerManagerKubeconfig, "/"),
			[]byte(kubeconfig(l.Opts.Name, self, "system:kube-controller-manager", s.certs.CA, k.ControllerManager)), 0o600},
		{strings.TrimPrefix(schedulerKubeconfig, "/"),
			[]byte(kubeconfig(l.Opts.Name, self, "system:kube-scheduler", s.certs.CA, k.Scheduler)), 0o600},
		{"root/.kube/config", []byte(kubeconfig(l.Opts.Name, self, "admin", s.certs.CA, k.Admin)), 0o600},
		{strings.TrimPrefix(EncryptionConfigPath, "/"), k.EncryptionConfig, 0o600},
		{"etc/systemd/system/kube-apiserver.service", []byte(l.apiserverUnit(h)), 0o644},
		{"etc/systemd/system/kube-controller-manager.service", []byte(controllerManagerUnit(h)), 0o644},
		{"etc/systemd/system/kube-scheduler.service", []byte(schedulerUnit(h)), 0o644},
	}
	for _, f := range files {
		if err := writeFile(p(f.rel), f.data, f.mode); err != nil {
			return err
		}
	}
	if err := os.Chmod(p("root/.kube"), 0o700); err != nil {
		return err
	}
	if err := bindReadOnly(kubeDir, p(kubeOnHost)); err != nil {
		return err
	}
	for _, c := range kubeCommands {
		link := filepath.Join(p(BinDir), c)
		_ = os.Remove(link)
		if err := os.Symlink(kubeOnHost+"/kube", link); err != nil {
			return err
		}
	}
	return nil
}

// bindReadOnly binds dir read-only over target (made if missing), unless
// something is mounted there already. Teardown's unmountAll of the lab's
// runtime dir undoes it.
func bindReadOnly(dir, target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if isMountPoint(target) {
		return nil
	}
	if err := syscall.Mount(dir, target, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", dir, target, err)
	}
	if err := syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		_ = syscall.Unmount(target, syscall.MNT_DETACH)
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}
