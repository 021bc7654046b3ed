package lab

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// A kubeadm-shaped lab (Options.Kubeadm, `lab up --kubeadm`): every master
// and node runs a real kubelet (KubeletDir) and containerd + runc from the
// base; on masters the kubelet runs etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler as static pods from
// /etc/kubernetes/manifests, in kubeadm's shapes and paths
// (/etc/kubernetes/pki, /etc/kubernetes/admin.conf, /var/lib/etcd). The lab
// writes these files itself instead of running kubeadm; where they differ
// from what kubeadm v1.34 writes:
//   - one CA signs everything (kubeadm has a separate etcd CA and a
//     front-proxy CA): /etc/kubernetes/pki/etcd/ca.crt is the cluster CA;
//   - etcd's server and peer certificates are one certificate naming every
//     etcd host's address; etcd and the control plane listen on the host's
//     own address only, never on 127.0.0.1 (the lab's hosts share one
//     network namespace), and etcd's metrics and probes use <address>:2381;
//   - the control plane's images are busybox with the cached kube build
//     bound in from the host (hostPath /opt/kube/kube-v<version>), not
//     registry.k8s.io/kube-apiserver and friends; etcd's image is a real
//     image holding the cached etcd build (registry.k8s.io/etcd:<v>-0);
//   - pods run on the host network only: nspawn hosts lack the
//     CAP_NET_ADMIN a pod network needs (see shared/design/kubelet-lab.md);
//     a CNI config that is never used makes containerd report the network
//     ready;
//   - etcdctl and etcdutl are also installed in /usr/local/bin on masters,
//     as kubespray's kubeadm mode does; the inventory's bin_dir says so.
//
// What each host needs from the machine to run containers is in
// kubeletPrep (and the per-host v1 cgroups in v1Cgroups).

// kubeadm's paths.
const (
	KubeadmPKI          = "/etc/kubernetes/pki"
	KubeadmEtcdPKI      = KubeadmPKI + "/etcd"
	KubeadmManifestsDir = "/etc/kubernetes/manifests"
	KubeadmAdminConf    = "/etc/kubernetes/admin.conf"
	// KubeadmBinDir is where a kubeadm lab's masters have etcdctl and etcdutl.
	KubeadmBinDir = "/usr/local/bin"
	// etcdMetricsPort is where kubeadm's etcd serves /livez and /readyz.
	etcdMetricsPort = 2381
	kubeletPort     = 10250
	kubeletHealthz  = 10248
)

// Where a kubeadm lab's hosts see the lab's own files: the kubelet build and
// the image tars, bound read-only from the cache.
const (
	labOptDir      = "/opt/ezrestore-lab"
	kubeletOnHost  = labOptDir + "/kubelet"
	imagesOnHost   = labOptDir + "/images"
	kubeletPrepBin = "/usr/local/sbin/ezrestore-lab-node-prep"
)

// kubeadm reports whether the lab is kubeadm-shaped.
func (l *Lab) kubeadm() bool { return l.Opts.Kubeadm }

// v1Controllers are the cgroup v1 controllers a kubelet host gets a cgroup
// of its own in (and has remounted read-write inside it).
var v1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"}

// v1Cgroups are the per-host cgroups in every v1 controller the machine
// mounts: the process that execs systemd-nspawn joins them, so the host's
// cgroup namespace root is its own and one host's kubelet never sees (nor
// cleans up) another's pods. Only kubelet hosts need them.
func (l *Lab) v1Cgroups(h Host) []string {
	if !h.Kubeadm {
		return nil
	}
	var out []string
	for _, c := range v1Controllers {
		root := filepath.Join("/sys/fs/cgroup", c)
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		if fi, err := os.Lstat(root); err != nil || fi.Mode()&os.ModeSymlink != 0 {
			continue // cpu -> cpu,cpuacct: the real dir is listed too
		}
		out = append(out, filepath.Join(root, "ezrestore-lab", l.Opts.Name, h.Machine))
	}
	return out
}

// initCpuset gives each new cpuset cgroup from the root down to dir the
// cpus and memory nodes of its parent: a v1 cpuset cgroup starts empty,
// and no process can join it until both are set.
func initCpuset(dir string) error {
	const root = "/sys/fs/cgroup/cpuset"
	if !strings.HasPrefix(dir, root+"/") {
		return nil
	}
	rel := strings.Split(strings.TrimPrefix(dir, root+"/"), "/")
	parent := root
	for _, part := range rel {
		d := filepath.Join(parent, part)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, _ := os.ReadFile(filepath.Join(d, f))
			if strings.TrimSpace(string(cur)) != "" {
				continue
			}
			val, err := os.ReadFile(filepath.Join(parent, f))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(d, f), val, 0o644); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(d, f), err)
			}
		}
		parent = d
	}
	return nil
}

// kubeletPrep runs in every kubelet host before containerd (unit
// ezrestore-lab-node-prep.service). Each line is a fix the design note
// shared/design/kubelet-lab.md found needed; none of them reaches outside
// the host.
const kubeletPrep = `#!/bin/sh
# ezrestore lab: what a kubelet and containerd need inside a systemd-nspawn host.
set -eu
# nspawn mounts the v1 controllers read-only; the host's own cgroup is below
# them (its cgroup namespace root), so read-write here is the host's only.
for c in ` + "cpu cpuacct cpuset memory devices freezer blkio pids" + `; do
	d=/sys/fs/cgroup/$c
	[ -d "$d" ] && [ ! -L "$d" ] && mountpoint -q "$d" || continue
	mount -o remount,bind,rw "$d"
done
# The kubelet reads the kernel log; the host has none of its own.
[ -e /dev/kmsg ] || ln -s /dev/console /dev/kmsg
# The kubelet insists on these sysctls; the machine's /proc/sys is read-only
# and must not change: the host sees files holding the values instead.
mkdir -p /run/ezrestore-lab/sysctl
for kv in vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1; do
	k=${kv%=*}; v=${kv#*=}
	f=/run/ezrestore-lab/sysctl/$(echo "$k" | tr / _)
	echo "$v" > "$f"
	mountpoint -q "/proc/sys/$k" || mount --bind "$f" "/proc/sys/$k"
done
`

func kubeletPrepUnit() string {
	return `[Unit]
Description=ezrestore lab: prepare the host for containerd and the kubelet
DefaultDependencies=no
Before=containerd.service kubelet.service
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + kubeletPrepBin + `

[Install]
WantedBy=multi-user.target
`
}

// imagesUnit imports the host's images into containerd's k8s.io namespace
// (the kubelet's) before the kubelet starts; importing an image that is
// there already is a no-op.
func imagesUnit(tars []string) string {
	var b strings.Builder
	b.WriteString(`[Unit]
Description=ezrestore lab: import the lab's container images (no registry)
After=containerd.service
Requires=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
`)
	for _, t := range tars {
		fmt.Fprintf(&b, "ExecStart=/usr/bin/ctr -n k8s.io images import --snapshotter native %s/%s\n", imagesOnHost, t)
	}
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// containerdConfig is containerd 1.6's config for a lab host (see
// shared/design/kubelet-lab.md for why each setting).
func containerdConfig(addr string) string {
	return fmt.Sprintf(`# ezrestore lab: containerd for the kubelet inside a systemd-nspawn host.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[2]q
  # The machine lacks CAP_SYS_RESOURCE: no oom_score_adj below the host's own.
  restrict_oom_score_adj = true
  # Hosts share one network namespace: each streams on its own address.
  stream_server_address = %[1]q
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    # overlayfs cannot stack on the host's overlay root.
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        # nspawn's seccomp filter blocks keyctl.
        NoNewKeyring = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`, addr, PauseImage)
}

// cniConfig makes containerd report its network ready (the kubelet marks
// the node Ready only then); it is never used, since pods run on the host
// network only.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "ezrestore-lab-host-network-only",
  "plugins": [{"type": "ezrestore-lab-no-pod-network"}]
}
`

// kubeletConfig is kubeadm's /var/lib/kubelet/config.yaml, with the lab's
// settings: the host's own address for every port, cgroup v1 with cgroupfs,
// and no eviction or image garbage collection (the machine's disk is shared).
func kubeletConfig(addr string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
healthzBindAddress: %[1]s
healthzPort: %[3]d
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[4]s/ca.crt
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
staticPodPath: %[5]s
fileCheckFrequency: 5s
clusterDomain: cluster.local
clusterDNS:
- 10.68.0.2
resolvConf: ""
rotateCertificates: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
`, addr, kubeletPort, kubeletHealthz, KubeadmPKI, KubeadmManifestsDir)
}

func kubeletUnit(addr string) string {
	return fmt.Sprintf(`[Unit]
Description=kubelet: The Kubernetes Node Agent (ezrestore lab: real, v%[1]s)
Documentation=https://kubernetes.io/docs/
Wants=network-online.target containerd.service
After=network-online.target containerd.service ezrestore-lab-images.service ezrestore-lab-node-prep.service

[Service]
ExecStart=/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml --node-ip=%[2]s --v=1
Restart=always
RestartSec=5
StartLimitInterval=0

[Install]
WantedBy=multi-user.target
`, KubeVersion, addr)
}

// kubeadmCerts are a kubeadm lab's certificates beyond certs' CA and etcd
// pair: one kubelet client certificate per host (system:node:<machine>).
type kubeadmCerts struct {
	Nodes map[string]keyPair // by address
	// SAPub is the public half of the CA key, which signs service account
	// tokens (kubeadm's sa.key and sa.pub are a key pair of their own).
	SAPub []byte
}

func (c *certs) addKubeadmCerts(hosts []Host) (*kubeadmCerts, error) {
	k := &kubeadmCerts{Nodes: map[string]keyPair{}}
	for _, h := range hosts {
		if !h.Kubeadm {
			continue
		}
		kp, err := c.issue(&x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:node:" + h.Machine, Organization: []string{"system:nodes"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return nil, fmt.Errorf("kubelet certificate of %s: %w", h.Machine, err)
		}
		k.Nodes[h.Address] = kp
	}
	der, err := x509.MarshalPKIXPublicKey(&c.caPriv.PublicKey)
	if err != nil {
		return nil, err
	}
	k.SAPub = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return k, nil
}

// kubeadmGroups renders the kubeadm lab's inventory groups as kubespray
// names them.
func (l *Lab) kubeadmGroups() []struct{ ini, group, comment string } {
	return []struct{ ini, group, comment string }{
		{"etcd", inventory.GroupEtcd, "# etcd members (static pods on the control plane, kubeadm's stacked etcd)"},
		{"kube_control_plane", inventory.GroupMaster, "# control plane nodes"},
		{"kube_node", inventory.GroupNode, "# worker nodes"},
	}
}

// kubeadmHostsINI is the short Ansible INI inventory of a kubeadm lab.
func (l *Lab) kubeadmHostsINI() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ezrestore lab %q: a kubeadm-shaped cluster written by `ezrestore lab up --kubeadm`.\n", l.Opts.Name)
	fmt.Fprintf(&b, "# kubelet v%s, containerd and runc are real; etcd and the control plane are the kubelet's static pods (%s).\n", KubeVersion, KubeadmManifestsDir)
	for _, g := range l.kubeadmGroups() {
		fmt.Fprintf(&b, "\n%s\n[%s]\n", g.comment, g.ini)
		for _, h := range l.group(g.group) {
			if g.group == inventory.GroupEtcd {
				// kubeadm names a member after its node, not its address.
				fmt.Fprintf(&b, "%s etcd_member_name=%s\n", h.Address, h.Machine)
				continue
			}
			b.WriteString(h.Address + "\n")
		}
	}
	fmt.Fprintf(&b, `
[all:vars]
ansible_user=root
ansible_ssh_private_key_file=%s
ansible_ssh_common_args="%s"
# kubespray's variable: etcd runs as kubeadm's static pods
etcd_deployment_type=kubeadm
# where etcdctl and etcdutl are on the control plane
bin_dir=%s
`, l.Dir.PrivateKey(), l.sshCommonArgs(), KubeadmBinDir)
	return b.String()
}

// etcdManifest is kubeadm's /etc/kubernetes/manifests/etcd.yaml for master h.
func (l *Lab) etcdManifest(h Host) string {
	var initial []string
	for _, e := range l.EtcdHosts() {
		initial = append(initial, fmt.Sprintf("%s=https://%s:2380", e.Machine, e.Address))
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://%[1]s:2379
  labels:
    component: etcd
    tier: control-plane
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://%[1]s:2379
    - --cert-file=%[2]s/server.crt
    - --client-cert-auth=true
    - --data-dir=%[3]s
    - --feature-gates=InitialCorruptCheck=true
    - --watch-progress-notify-interval=5s
    - --initial-advertise-peer-urls=https://%[1]s:2380
    - --initial-cluster=%[4]s
    - --initial-cluster-state=new
    - --initial-cluster-token=etcd-cluster-0
    - --key-file=%[2]s/server.key
    - --listen-client-urls=https://%[1]s:2379
    - --listen-metrics-urls=http://%[1]s:%[7]d
    - --listen-peer-urls=https://%[1]s:2380
    - --name=%[5]s
    - --peer-cert-file=%[2]s/peer.crt
    - --peer-client-cert-auth=true
    - --peer-key-file=%[2]s/peer.key
    - --peer-trusted-ca-file=%[2]s/ca.crt
    - --snapshot-count=10000
    - --trusted-ca-file=%[2]s/ca.crt
    image: %[6]s
    imagePullPolicy: IfNotPresent
    livenessProbe:
      failureThreshold: 8
      httpGet:
        host: %[1]s
        path: /livez
        port: %[7]d
        scheme: HTTP
      initialDelaySeconds: 10
      periodSeconds: 10
      timeoutSeconds: 15
    name: etcd
    readinessProbe:
      failureThreshold: 3
      httpGet:
        host: %[1]s
        path: /readyz
        port: %[7]d
        scheme: HTTP
      periodSeconds: 1
      timeoutSeconds: 15
    resources:
      requests:
        cpu: 100m
        memory: 100Mi
    startupProbe:
      failureThreshold: 24
      httpGet:
        host: %[1]s
        path: /readyz
        port: %[7]d
        scheme: HTTP
      initialDelaySeconds: 10
      periodSeconds: 10
      timeoutSeconds: 15
    volumeMounts:
    - mountPath: %[3]s
      name: etcd-data
    - mountPath: %[2]s
      name: etcd-certs
  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  volumes:
  - hostPath:
      path: %[2]s
      type: DirectoryOrCreate
    name: etcd-certs
  - hostPath:
      path: %[3]s
      type: DirectoryOrCreate
    name: etcd-data
status: {}
`, h.Address, KubeadmEtcdPKI, EtcdDataDir, strings.Join(initial, ","), h.Machine, EtcdImage(l.EtcdRelease), etcdMetricsPort)
}

// controlPlanePod renders a kubeadm-shaped static pod of the control plane:
// the cached kube build is bound in from the host (see the file comment).
func controlPlanePod(component, addr string, probePort int, probePath string, args []string, extraVolumes [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Pod
metadata:
  labels:
    component: %[1]s
    tier: control-plane
  name: %[1]s
  namespace: kube-system
spec:
  containers:
  - command:
    - %[2]s/%[1]s
`, component, kubeOnHost)
	for _, a := range args {
		fmt.Fprintf(&b, "    - %s\n", a)
	}
	fmt.Fprintf(&b, `    image: %[1]s
    imagePullPolicy: IfNotPresent
    livenessProbe:
      failureThreshold: 8
      httpGet:
        host: %[2]s
        path: %[6]s
        port: %[3]d
        scheme: HTTPS
      initialDelaySeconds: 10
      periodSeconds: 10
      timeoutSeconds: 15
    name: %[4]s
    resources:
      requests:
        cpu: 100m
    startupProbe:
      failureThreshold: 24
      httpGet:
        host: %[2]s
        path: %[6]s
        port: %[3]d
        scheme: HTTPS
      initialDelaySeconds: 10
      periodSeconds: 10
      timeoutSeconds: 15
    volumeMounts:
    - mountPath: %[5]s
      name: kube-bin
      readOnly: true
`, BusyboxImage, addr, probePort, component, kubeOnHost, probePath)
	for _, v := range extraVolumes {
		fmt.Fprintf(&b, "    - mountPath: %s\n      name: %s\n      readOnly: true\n", v[1], v[0])
	}
	fmt.Fprintf(&b, `  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  volumes:
  - hostPath:
      path: %s
      type: Directory
    name: kube-bin
`, kubeOnHost)
	for _, v := range extraVolumes {
		typ := "DirectoryOrCreate"
		if strings.HasSuffix(v[1], ".conf") {
			typ = "FileOrCreate"
		}
		fmt.Fprintf(&b, "  - hostPath:\n      path: %s\n      type: %s\n    name: %s\n", v[1], typ, v[0])
	}
	b.WriteString("status: {}\n")
	return b.String()
}

func (l *Lab) apiserverManifest(h Host) string {
	var eps []string
	for _, e := range l.EtcdHosts() {
		eps = append(eps, "https://"+e.Address+":2379")
	}
	p := KubeadmPKI
	args := []string{
		"--advertise-address=" + h.Address,
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--bind-address=" + h.Address,
		"--client-ca-file=" + p + "/ca.crt",
		"--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth=true",
		"--encryption-provider-config=" + p + "/encryption-config.yaml",
		"--etcd-cafile=" + p + "/etcd/ca.crt",
		"--etcd-certfile=" + p + "/apiserver-etcd-client.crt",
		"--etcd-keyfile=" + p + "/apiserver-etcd-client.key",
		"--etcd-servers=" + strings.Join(eps, ","),
		"--kubelet-client-certificate=" + p + "/apiserver-kubelet-client.crt",
		"--kubelet-client-key=" + p + "/apiserver-kubelet-client.key",
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--secure-port=" + fmt.Sprint(KubeSecurePort),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p + "/sa.pub",
		"--service-account-signing-key-file=" + p + "/sa.key",
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--tls-cert-file=" + p + "/apiserver.crt",
		"--tls-private-key-file=" + p + "/apiserver.key",
	}
	return controlPlanePod("kube-apiserver", h.Address, KubeSecurePort, "/livez", args, [][2]string{{"k8s-certs", p}})
}

func controllerManagerManifest(h Host) string {
	p := KubeadmPKI
	conf := "/etc/kubernetes/controller-manager.conf"
	args := []string{
		"--allocate-node-cidrs=true",
		"--authentication-kubeconfig=" + conf,
		"--authorization-kubeconfig=" + conf,
		"--bind-address=" + h.Address,
		"--secure-port=" + fmt.Sprint(controllerManagerPort),
		"--client-ca-file=" + p + "/ca.crt",
		"--cluster-cidr=" + ClusterCIDR,
		"--cluster-name=kubernetes",
		"--cluster-signing-cert-file=" + p + "/ca.crt",
		"--cluster-signing-key-file=" + p + "/ca.key",
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--kubeconfig=" + conf,
		"--leader-elect=true",
		"--root-ca-file=" + p + "/ca.crt",
		"--service-account-private-key-file=" + p + "/sa.key",
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--use-service-account-credentials=true",
	}
	return controlPlanePod("kube-controller-manager", h.Address, controllerManagerPort, "/healthz", args,
		[][2]string{{"k8s-certs", p}, {"kubeconfig", conf}})
}

func schedulerManifest(h Host) string {
	conf := "/etc/kubernetes/scheduler.conf"
	args := []string{
		"--authentication-kubeconfig=" + conf,
		"--authorization-kubeconfig=" + conf,
		"--bind-address=" + h.Address,
		"--secure-port=" + fmt.Sprint(schedulerPort),
		"--kubeconfig=" + conf,
		"--leader-elect=true",
	}
	return controlPlanePod("kube-scheduler", h.Address, schedulerPort, "/healthz", args, [][2]string{{"kubeconfig", conf}})
}

// writeKubeadmHost writes a kubeadm lab host's files into its root: the
// runtime and kubelet on every host; on masters the PKI, kubeconfigs and
// static pod manifests.
func (l *Lab) writeKubeadmHost(h Host, root string, s *hostSecrets, etcdBin string) error {
	p := func(rel string) string { return filepath.Join(root, rel) }
	ka := s.kubeadm
	master := h.In(inventory.GroupMaster)
	server := apiURL(l.Masters()[0].Address)
	if master {
		server = apiURL(h.Address)
	}
	type file struct {
		rel  string
		data []byte
		mode os.FileMode
	}
	files := []file{
		{"etc/containerd/config.toml", []byte(containerdConfig(h.Address)), 0o644},
		{"etc/cni/net.d/10-ezrestore-lab.conflist", []byte(cniConfig), 0o644},
		{"var/lib/kubelet/config.yaml", []byte(kubeletConfig(h.Address)), 0o644},
		{"etc/kubernetes/kubelet.conf", []byte(kubeconfig("kubernetes", server, "system:node:"+h.Machine, s.certs.CA, ka.Nodes[h.Address])), 0o600},
		{"etc/kubernetes/pki/ca.crt", s.certs.CA, 0o644},
		{"etc/systemd/system/kubelet.service", []byte(kubeletUnit(h.Address)), 0o644},
		{"etc/systemd/system/ezrestore-lab-node-prep.service", []byte(kubeletPrepUnit()), 0o644},
		{strings.TrimPrefix(kubeletPrepBin, "/"), []byte(kubeletPrep), 0o755},
	}
	tars := []string{imageFileName(PauseImage), imageFileName(BusyboxImage)}
	if master {
		tars = append(tars, imageFileName(EtcdImage(l.EtcdRelease)))
		k := s.certs.Kube
		admin := kubeconfig("kubernetes", server, "kubernetes-admin", s.certs.CA, k.Admin)
		files = append(files,
			file{"etc/kubernetes/pki/ca.key", s.certs.CAKey, 0o600},
			file{"etc/kubernetes/pki/apiserver.crt", k.Kubernetes.Cert, 0o644},
			file{"etc/kubernetes/pki/apiserver.key", k.Kubernetes.Key, 0o600},
			file{"etc/kubernetes/pki/apiserver-etcd-client.crt", k.Kubernetes.Cert, 0o644},
			file{"etc/kubernetes/pki/apiserver-etcd-client.key", k.Kubernetes.Key, 0o600},
			file{"etc/kubernetes/pki/apiserver-kubelet-client.crt", k.Admin.Cert, 0o644},
			file{"etc/kubernetes/pki/apiserver-kubelet-client.key", k.Admin.Key, 0o600},
			file{"etc/kubernetes/pki/sa.key", s.certs.CAKey, 0o600},
			file{"etc/kubernetes/pki/sa.pub", ka.SAPub, 0o644},
			file{"etc/kubernetes/pki/encryption-config.yaml", k.EncryptionConfig, 0o600},
			file{"etc/kubernetes/pki/etcd/ca.crt", s.certs.CA, 0o644},
			file{"etc/kubernetes/pki/etcd/server.crt", s.certs.Etcd, 0o644},
			file{"etc/kubernetes/pki/etcd/server.key", s.certs.EtcdKey, 0o600},
			file{"etc/kubernetes/pki/etcd/peer.crt", s.certs.Etcd, 0o644},
			file{"etc/kubernetes/pki/etcd/peer.key", s.certs.EtcdKey, 0o600},
			file{"etc/kubernetes/pki/etcd/healthcheck-client.crt", s.certs.Etcd, 0o644},
			file{"etc/kubernetes/pki/etcd/healthcheck-client.key", s.certs.EtcdKey, 0o600},
			file{strings.TrimPrefix(KubeadmAdminConf, "/"), []byte(admin), 0o600},
			file{"etc/kubernetes/controller-manager.conf", []byte(kubeconfig("kubernetes", server, "system:kube-controller-manager", s.certs.CA, k.ControllerManager)), 0o600},
			file{"etc/kubernetes/scheduler.conf", []byte(kubeconfig("kubernetes", server, "system:kube-scheduler", s.certs.CA, k.Scheduler)), 0o600},
			file{"root/.kube/config", []byte(admin), 0o600},
			file{"etc/kubernetes/manifests/kube-apiserver.yaml", []byte(l.apiserverManifest(h)), 0o600},
			file{"etc/kubernetes/manifests/kube-controller-manager.yaml", []byte(controllerManagerManifest(h)), 0o600},
			file{"etc/kubernetes/manifests/kube-scheduler.yaml", []byte(schedulerManifest(h)), 0o600},
		)
		if h.In(inventory.GroupEtcd) {
			files = append(files, file{"etc/kubernetes/manifests/etcd.yaml", []byte(l.etcdManifest(h)), 0o600})
		}
	}
	files = append(files, file{"etc/systemd/system/ezrestore-lab-images.service", []byte(imagesUnit(tars)), 0o644})
	for _, f := range files {
		if err := writeFile(p(f.rel), f.data, f.mode); err != nil {
			return err
		}
	}
	for _, d := range []string{"etc/kubernetes/manifests", "etc/kubernetes/pki/etcd"} {
		if err := os.MkdirAll(p(d), 0o755); err != nil {
			return err
		}
	}
	if master {
		if err := os.MkdirAll(p(EtcdDataDir), 0o700); err != nil {
			return err
		}
		if err := os.Chmod(p("root/.kube"), 0o700); err != nil {
			return err
		}
		if err := bindReadOnly(l.KubeBin, p(kubeOnHost)); err != nil {
			return err
		}
		for _, n := range []string{"etcdctl", "etcdutl"} {
			if err := copyFile(filepath.Join(etcdBin, n), p(filepath.Join(KubeadmBinDir, n)), 0o755); err != nil {
				return err
			}
		}
	}
	if err := bindReadOnly(l.KubeletBin, p(kubeletOnHost)); err != nil {
		return err
	}
	if err := bindReadOnly(l.ImagesDir, p(imagesOnHost)); err != nil {
		return err
	}
	link := p("usr/bin/kubelet")
	_ = os.Remove(link)
	if err := os.Symlink(kubeletOnHost+"/kubelet", link); err != nil {
		return err
	}
	wants := p("etc/systemd/system/multi-user.target.wants")
	for _, u := range []struct{ name, path string }{
		{"containerd.service", "/lib/systemd/system/containerd.service"},
		{"kubelet.service", "/etc/systemd/system/kubelet.service"},
		{"ezrestore-lab-node-prep.service", "/etc/systemd/system/ezrestore-lab-node-prep.service"},
		{"ezrestore-lab-images.service", "/etc/systemd/system/ezrestore-lab-images.service"},
	} {
		link := filepath.Join(wants, u.name)
		_ = os.Remove(link)
		if err := os.Symlink(u.path, link); err != nil {
			return err
		}
	}
	return nil
}

// kubeadmPorts are the ports a kubeadm lab host opens on its own address
// beyond sshd, etcd and the control plane's.
func kubeadmPorts(h Host) []string {
	ports := []string{fmt.Sprint(kubeletPort), fmt.Sprint(kubeletHealthz)}
	if h.In(inventory.GroupEtcd) {
		ports = append(ports, fmt.Sprint(etcdMetricsPort))
	}
	return ports
}

// ensureKubeadm fills what a kubeadm lab needs beyond the control plane's
// build: the kubelet build and the image tars.
func (l *Lab) ensureKubeadm(ctx context.Context, etcdBin string) error {
	var err error
	if l.KubeletBin, err = EnsureKubelet(ctx, l.Opts.Out); err != nil {
		return err
	}
	if etcdBin == "" {
		return fmt.Errorf("--kubeadm needs an etcd built from the Go module proxy for its etcd image (--etcd-version 3.5, 3.6 or 3.7)")
	}
	l.ImagesDir, err = EnsureImages(ctx, l.BaseRoot, etcdBin, l.EtcdRelease, l.Opts.Out)
	return err
}

// kubeadmEtcdctlCmd is the lab's etcdctl on a kubeadm master against its
// own etcd, with kubeadm's healthcheck client certificate.
func kubeadmEtcdctlCmd(addr string) string {
	q := []string{KubeadmBinDir + "/etcdctl"}
	for _, a := range []string{
		"--endpoints=https://" + addr + ":2379",
		"--cacert=" + KubeadmEtcdPKI + "/ca.crt",
		"--cert=" + KubeadmEtcdPKI + "/healthcheck-client.crt",
		"--key=" + KubeadmEtcdPKI + "/healthcheck-client.key",
	} {
		q = append(q, transport.Quote(a))
	}
	return strings.Join(q, " ")
}

// MemberName is the etcd member name of the host addr: kubeadm names a
// member after its node (the host name), kubeasz after its address.
func (l *Lab) MemberName(addr string) string {
	if h, err := l.Host(addr); err == nil && h.Kubeadm {
		return h.Machine
	}
	return EtcdMemberName(addr)
}
