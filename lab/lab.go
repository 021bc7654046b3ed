// Package lab runs a multi-host, kubeasz-style Kubernetes etcd cluster on one
// Linux machine: systemd-nspawn containers booted with real systemd, each on
// an overlay over one cached Debian root filesystem, each owning one loopback
// address (sshd on <ip>:22, etcd with TLS on <ip>:2379 and <ip>:2380), and a
// kubeasz cluster directory (<base>/clusters/<name>/) that ansible-playbook,
// OpenSSH and ezrestore use unchanged.
//
// With Options.Kube "real" the masters run the real kube-apiserver,
// kube-controller-manager and kube-scheduler (built once per machine, see
// EnsureKube) and the lab writes kubeasz's kubectl.kubeconfig; with
// "stand-in" (the default of Options) they are stand-ins: units with the real
// names that run a small long-lived shell program. kubelet and kube-proxy are
// always stand-ins: there is no container runtime. Everything else is real.
//
// Hosts share the machine's network namespace (no bridge, no routes): all
// traffic stays on 127.0.0.0/8. The lab needs root, debootstrap and
// systemd-nspawn; it does not need systemd as the machine's PID 1.
//
// The lab is the independent judge of what ezrestore did to a cluster: it
// reads etcd with its own etcdctl command and health check, and must not
// import restore, steps, backup or snapshot. It imports inventory (it writes
// the cluster dir ezrestore reads) and orchestrator for shell quoting only.
// Tests bring a lab up through internal/testkit/labtest.
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
)

// Options describe a lab to bring up.
type Options struct {
	// Name names the lab, its address block, its machines and its cluster dir.
	Name string
	// Base is the kubeasz base dir; the cluster dir is <Base>/clusters/<Name>.
	Base string
	// Etcd is the number of etcd members: 1, 3 (default) or 5.
	Etcd int
	// Nodes is the number of worker hosts (default 2; -1 means none; at most MaxNodes).
	Nodes int
	// SeparateEtcd puts etcd on hosts of its own instead of on the masters.
	SeparateEtcd bool
	// Masters is the number of masters with SeparateEtcd (default 2); without
	// it the etcd hosts are the masters.
	Masters int
	// EtcdVersion is "" for Debian's etcd 3.4, or "3.5", "3.6", "3.7" for the
	// latest patch of that minor built from the Go module proxy.
	EtcdVersion string
	// EtcdWALDir, when set (an absolute path such as /var/lib/etcd-wal), puts
	// etcd's WAL there (--wal-dir, config.yml ETCD_WAL_DIR); empty keeps it in
	// the data dir, as kubeasz does by default.
	EtcdWALDir string
	// JumpHost adds a jump host that every other host accepts SSH from
	// only; the hosts file reaches them through it (see jump.go).
	JumpHost bool
	// Kube is KubeReal to run the real control plane on masters (etcd 3.6 by
	// default then), or KubeStandIn ("" means KubeStandIn) for stand-ins.
	Kube string
	// Kubeadm makes the lab kubeadm-shaped (kubeadm.go): real kubelets and
	// containerd on every master and node, etcd and the control plane as
	// static pods. It implies Kube KubeReal.
	Kubeadm bool `json:",omitempty"`
	// Out receives progress lines; nil is silent.
	Out io.Writer `json:"-"`
}

// Host is one machine of the lab.
type Host struct {
	// Machine is the nspawn machine name (and the host's hostname).
	Machine string
	// Address is the host's loopback address, also its inventory host name.
	Address string
	// Groups are the kubeasz groups the host is in.
	Groups []string
	// Kubeadm is true for a kubeadm lab's masters and nodes: they run
	// containerd and a real kubelet (kubeadm.go).
	Kubeadm bool `json:",omitempty"`
}

// In reports whether the host is in group.
func (h Host) In(group string) bool {
	for _, g := range h.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// Lab is a lab that is (or was) up.
type Lab struct {
	Opts  Options
	Dir   inventory.ClusterDir
	Hosts []Host
	// Block is the lab's address block, 127.X.Y.0/24.
	Block string
	// EtcdRelease is the etcd version the hosts run, as "3.4.23" or "3.6.16".
	EtcdRelease string
	// KubeBin is the cached kube build the masters run (KubeReal only).
	KubeBin string `json:",omitempty"`
	// KubeletBin and ImagesDir are the cached kubelet build and image tars
	// a kubeadm lab's hosts use (Options.Kubeadm only).
	KubeletBin string `json:",omitempty"`
	ImagesDir  string `json:",omitempty"`
	// BaseRoot is the cached root filesystem the hosts' overlays sit on.
	BaseRoot string
	// Created is when the lab was brought up.
	Created time.Time
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$`)

func (o *Options) normalize() error {
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("lab name %q: use 1 to 20 of a-z, 0-9 and '-' (not at the ends)", o.Name)
	}
	if o.Base == "" {
		o.Base = inventory.DefaultBase()
	}
	abs, err := filepath.Abs(o.Base)
	if err != nil {
		return err
	}
	o.Base = abs
	if o.Etcd == 0 {
		o.Etcd = 3
	}
	if o.Etcd != 1 && o.Etcd != 3 && o.Etcd != 5 {
		return fmt.Errorf("--etcd %d: a lab has 1, 3 or 5 etcd members", o.Etcd)
	}
	switch {
	case o.Nodes == 0:
		o.Nodes = 2
	case o.Nodes < 0:
		o.Nodes = 0
	case o.Nodes > MaxNodes:
		return fmt.Errorf("--nodes %d: at most %d (the lab's hosts share one /24 of loopback addresses)", o.Nodes, MaxNodes)
	}
	if o.SeparateEtcd {
		if o.Masters == 0 {
			o.Masters = 2
		}
		if o.Masters < 1 || o.Masters > 5 {
			return fmt.Errorf("--masters %d: 1 to 5", o.Masters)
		}
	} else {
		o.Masters = o.Etcd
	}
	if o.EtcdWALDir != "" && (!filepath.IsAbs(o.EtcdWALDir) || filepath.Clean(o.EtcdWALDir) == EtcdDataDir ||
		strings.HasPrefix(filepath.Clean(o.EtcdWALDir)+"/", EtcdDataDir+"/member/")) {
		return fmt.Errorf("--etcd-wal-dir %q: an absolute path outside %s/member", o.EtcdWALDir, EtcdDataDir)
	}
	if o.Kubeadm {
		if o.SeparateEtcd || o.JumpHost || o.EtcdWALDir != "" {
			return fmt.Errorf("--kubeadm: a kubeadm lab has stacked etcd on the control plane, no jump host and no separate WAL dir")
		}
		if o.Kube == KubeStandIn {
			return fmt.Errorf("--kubeadm runs the real control plane as static pods; --kube stand-in does not go with it")
		}
		o.Kube = KubeReal
	}
	switch o.Kube {
	case "", KubeStandIn:
		o.Kube = KubeStandIn
	case KubeReal:
		switch o.EtcdVersion {
		case "":
			// Kubernetes 1.34 is built and tested against etcd 3.6 (its client
			// is 3.6.4, kubeadm installs 3.6.5); see README.md.
			o.EtcdVersion = "3.6"
		case "3.4":
			return fmt.Errorf("--etcd-version 3.4 with --kube real: Kubernetes v%s needs etcd 3.5 or newer (Debian's 3.4.23 lacks the watch-progress fixes of 3.4.31 and is past its support); use 3.5, 3.6 or 3.7, or --kube stand-in", KubeVersion)
		}
	default:
		return fmt.Errorf("--kube %q: use %s or %s", o.Kube, KubeReal, KubeStandIn)
	}
	switch o.EtcdVersion {
	case "", "3.4":
		o.EtcdVersion = ""
	case "3.5", "3.6", "3.7":
	default:
		return fmt.Errorf("--etcd-version %q: use 3.4 (Debian's, the default), 3.5, 3.6 or 3.7", o.EtcdVersion)
	}
	return nil
}

// blockFor derives the lab's address block from its name: 127.X.Y.0/24 with
// X in 16..254, so it never meets 127.0.0.1 or Debian's 127.0.1.1.
func blockFor(name string) string {
	h := fnv.New32a()
	h.Write([]byte("ezrestore-lab/" + name))
	v := h.Sum32()
	return fmt.Sprintf("127.%d.%d", 16+v%239, (v>>8)%256)
}

// topology lays out the hosts: masters (which carry etcd unless separate),
// then separate etcd hosts, then nodes; addresses .11, .12, ... in that order.
func topology(o Options) []Host {
	block := blockFor(o.Name)
	var hosts []Host
	add := func(role string, n int, groups ...string) {
		for i := 1; i <= n; i++ {
			hosts = append(hosts, Host{
				Machine: fmt.Sprintf("%s-%s%d", o.Name, role, i),
				Address: fmt.Sprintf("%s.%d", block, 11+len(hosts)),
				Groups:  groups,
			})
		}
	}
	if o.SeparateEtcd {
		add("etcd", o.Etcd, inventory.GroupEtcd)
		add("master", o.Masters, inventory.GroupMaster)
	} else {
		add("master", o.Etcd, inventory.GroupEtcd, inventory.GroupMaster)
	}
	add("node", o.Nodes, inventory.GroupNode)
	if o.Kubeadm {
		for i := range hosts {
			hosts[i].Kubeadm = true
		}
	}
	return withJumpHost(o, hosts)
}

func (l *Lab) group(g string) []Host {
	var out []Host
	for _, h := range l.Hosts {
		if h.In(g) {
			out = append(out, h)
		}
	}
	return out
}

// EtcdHosts are the hosts in [etcd].
func (l *Lab) EtcdHosts() []Host { return l.group(inventory.GroupEtcd) }

// Masters are the hosts in [kube_master].
func (l *Lab) Masters() []Host { return l.group(inventory.GroupMaster) }

// Nodes are the hosts in [kube_node].
func (l *Lab) Nodes() []Host { return l.group(inventory.GroupNode) }

// Host finds a host by address (or machine name).
func (l *Lab) Host(addr string) (Host, error) {
	for _, h := range l.Hosts {
		if h.Address == addr || h.Machine == addr {
			return h, nil
		}
	}
	return Host{}, fmt.Errorf("lab %s has no host %s", l.Opts.Name, addr)
}

// EtcdMemberName is the member name kubeasz gives the etcd on host addr.
func EtcdMemberName(addr string) string { return "etcd-" + addr }

// KubeUnits are the Kubernetes units a host runs (real or stand-ins, see the package doc).
func (h Host) KubeUnits() []string {
	var u []string
	if h.Kubeadm {
		// The control plane and etcd are the kubelet's static pods.
		return []string{"containerd", "kubelet"}
	}
	if h.In(inventory.GroupMaster) {
		u = append(u, "kube-apiserver", "kube-controller-manager", "kube-scheduler")
	}
	if h.In(inventory.GroupMaster) || h.In(inventory.GroupNode) {
		u = append(u, "kubelet", "kube-proxy")
	}
	return u
}

// Units are every lab unit on the host, etcd first where it runs.
func (h Host) Units() []string {
	var u []string
	if h.In(inventory.GroupEtcd) && !h.Kubeadm {
		u = append(u, "etcd")
	}
	return append(append(u, "ssh"), h.KubeUnits()...)
}

// The files the lab keeps per host and per lab at run time.
func labRuntime(name string) string     { return filepath.Join(RuntimeDir, name) }
func statePath(name string) string      { return filepath.Join(labRuntime(name), "state.json") }
func (l *Lab) runtime() string          { return labRuntime(l.Opts.Name) }
func (l *Lab) hostDir(h Host) string    { return filepath.Join(l.runtime(), "hosts", h.Machine) }
func (l *Lab) merged(h Host) string     { return filepath.Join(l.hostDir(h), "root") }
func (l *Lab) pidFile(h Host) string    { return filepath.Join(l.hostDir(h), "nspawn.pid") }
func (l *Lab) consoleLog(h Host) string { return filepath.Join(l.hostDir(h), "console.log") }
func (l *Lab) overlayDirs(h Host) (string, string) {
	return filepath.Join(l.hostDir(h), "upper"), filepath.Join(l.hostDir(h), "work")
}

// Open returns the lab called name from its state. base may be empty; if
// given it must be the base the lab was brought up with.
func Open(name, base string) (*Lab, error) {
	data, err := os.ReadFile(statePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no lab %q is up (no %s)", name, statePath(name))
	}
	if err != nil {
		return nil, err
	}
	l := &Lab{}
	if err := json.Unmarshal(data, l); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(name), err)
	}
	if base != "" {
		if abs, err := filepath.Abs(base); err == nil && abs != l.Opts.Base {
			return nil, fmt.Errorf("lab %q was brought up with base %s, not %s", name, l.Opts.Base, abs)
		}
	}
	return l, nil
}

func (l *Lab) saveState() error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(l.runtime(), 0o700); err != nil {
		return err
	}
	tmp := statePath(l.Opts.Name) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(l.Opts.Name))
}

// SetOutput sets where progress goes for later calls (Open leaves it nil).
func (l *Lab) SetOutput(w io.Writer) { l.Opts.Out = w }

func (l *Lab) logf(format string, args ...any) { logf(l.Opts.Out, format, args...) }

// MaxNodes bounds the workers: hosts take .11 up in the lab's block, and
// etcd hosts, masters and a jump host need room below .255.
const MaxNodes = 200
