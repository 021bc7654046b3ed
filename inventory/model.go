package inventory

// This file is the typed cluster model the rest of ezrestore works with.
// Parsers (INI, YAML, kubeasz config.yml) fill it; nothing else builds one.

// Group names as kubeasz writes them. kubespray's names are accepted as aliases.
const (
	GroupEtcd   = "etcd"
	GroupMaster = "kube_master" // kubespray: kube_control_plane
	GroupNode   = "kube_node"
)

// Host is one inventory host with its effective variables
// (all:vars < parent group vars < group vars < host vars < extra vars).
type Host struct {
	// Name is inventory_hostname as written in the inventory (kubeasz uses the IP).
	Name string
	// Address is ansible_host, else Name.
	Address string
	// Port is ansible_port, else 22.
	Port int
	// User is ansible_user, else root.
	User string
	// KeyFile is ansible_ssh_private_key_file, or empty.
	KeyFile string
	// Become is ansible_become; BecomeUser is ansible_become_user (default root).
	Become     bool
	BecomeUser string
	// Groups the host belongs to, directly or through :children.
	Groups []string
	// Vars are the effective variables, interpolated, as strings.
	Vars map[string]string
	// VarPos says where each effective variable got its value (the file and
	// line that won), for error messages about a variable.
	VarPos map[string]Pos
	// File and Line say where the host was first defined, for error messages.
	File string
	Line int

	// undef lists, per variable, the undefined names its value still uses.
	undef map[string][]string
}

// Var returns an effective variable of the host.
func (h *Host) Var(name string) (string, bool) {
	v, ok := h.Vars[name]
	return v, ok
}

// InGroup reports whether the host is in group (kubespray aliases count).
func (h *Host) InGroup(group string) bool {
	for _, g := range h.Groups {
		if canonicalGroup(g) == canonicalGroup(group) {
			return true
		}
	}
	return false
}

// canonicalGroup maps kubespray group names onto kubeasz's.
func canonicalGroup(g string) string {
	switch g {
	case "kube_control_plane", "kube-master":
		return GroupMaster
	case "kube-node":
		return GroupNode
	}
	return g
}

// Inventory is a parsed inventory with its hosts in the order they were written.
type Inventory struct {
	// File is the inventory file read.
	File string
	// Hosts in first-seen order, each once.
	Hosts []*Host
	// Vars are the effective all-level variables (all:vars, config.yml, extra vars).
	Vars map[string]string
	// VarPos says where each all-level variable got its value.
	VarPos map[string]Pos
	// VarFiles are the extra-vars files read, lowest precedence first
	// (LoadCluster puts config.yml first).
	VarFiles []string
	// Cluster is the kubeasz cluster name when read with LoadCluster.
	Cluster string
	// Warnings are problems that do not stop a run (an even etcd member count),
	// each as "file:line: message".
	Warnings []string
	// Style is the tool the inventory looks written for; it decides the
	// defaults kubeasz and kubespray disagree on (etcd member names).
	Style Style
	// StyleReason says what Style was decided on, with its file:line.
	StyleReason string

	// groupPos is where each declared group was first written.
	groupPos map[string]Pos
	// groupTree holds each group's children and own hosts as written,
	// in groupOrder, for Describe.
	groupTree  map[string]groupNode
	groupOrder []string
	// etcdIndex is each etcd host's 1-based position in Ansible's
	// groups['etcd'] (the group's own hosts in written order, then its
	// children's), which kubespray's member names count by.
	etcdIndex map[string]int
}

type groupNode struct {
	children, hosts []string
}

// Style is the deployment tool an inventory is written for.
type Style string

const (
	// StyleKubeasz is kubeasz's clusters/<name>/hosts (and any inventory
	// that does not look like kubespray's).
	StyleKubeasz Style = "kubeasz"
	// StyleKubespray is recognized by kubespray's group names
	// (kube_control_plane, k8s_cluster, or the older kube-master and
	// k8s-cluster) or by a variable only kubespray uses.
	StyleKubespray Style = "kubespray"
)

// Group returns the hosts of group in inventory order; kubespray aliases count.
func (inv *Inventory) Group(group string) []*Host {
	var out []*Host
	for _, h := range inv.Hosts {
		if group == "all" || h.InGroup(group) {
			out = append(out, h)
		}
	}
	return out
}

// EtcdMember is how one etcd host takes part in the cluster.
type EtcdMember struct {
	Host *Host
	// Name is etcd_member_name when set. Otherwise it is the deployment
	// tool's default: for a kubespray-style inventory (Inventory.Style)
	// "etcd<N>", N the host's 1-based position in the etcd group as Ansible
	// orders it (kubespray's etcd1..N); for any other, kubeasz's
	// "etcd-<inventory_hostname>". Loading warns when kubespray's default is
	// assumed; the name in each host's etcd unit is the truth, and preflight
	// compares the two before anything changes.
	Name string
	// PeerURL is etcd_peer_url, else https://<addr>:2380, where addr is the
	// first set of kubespray's etcd_access_address, main_access_ip, access_ip
	// and ip, else inventory_hostname (kubeasz's naming; an IPv6 address gets
	// brackets).
	PeerURL string
	// ClientURL is etcd_client_url, else https://<addr>:2379.
	ClientURL string
}
