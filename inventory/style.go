package inventory

import (
	"fmt"
	"strings"
)

// kubesprayGroups are group names only kubespray writes (kubeasz has
// kube_master and no parent group of the cluster's nodes).
var kubesprayGroups = []string{"kube_control_plane", "k8s_cluster", "kube-master", "k8s-cluster"}

// kubesprayVars are variables of kubespray's group_vars that kubeasz does not
// use (its own settings are upper case: CLUSTER_NETWORK, K8S_VER, ...).
var kubesprayVars = []string{"etcd_deployment_type", "kube_network_plugin", "container_manager", "kube_proxy_mode", "kube_version"}

// classify decides Style, fills etcdIndex and adds the warnings that need the
// whole inventory: hosts in no group and kubespray member names assumed.
// Called by resolve once the hosts are known.
func (inv *Inventory) classify(s *source) {
	inv.Style = StyleKubeasz
	inv.StyleReason = "no kubespray group (kube_control_plane, k8s_cluster) or variable"
	for _, g := range kubesprayGroups {
		if p, ok := inv.groupPos[g]; ok {
			inv.Style, inv.StyleReason = StyleKubespray, fmt.Sprintf("group %s at %s", g, p)
			break
		}
	}
	if inv.Style != StyleKubespray {
	vars:
		for _, name := range kubesprayVars {
			if p, ok := inv.VarPos[name]; ok {
				inv.Style, inv.StyleReason = StyleKubespray, fmt.Sprintf("variable %s at %s", name, p)
				break
			}
			for _, h := range inv.Hosts {
				if p, ok := h.VarPos[name]; ok {
					inv.Style, inv.StyleReason = StyleKubespray, fmt.Sprintf("variable %s at %s", name, p)
					break vars
				}
			}
		}
	}

	inv.etcdIndex = map[string]int{}
	for i, hn := range s.ansibleGroupHosts(GroupEtcd) {
		inv.etcdIndex[hn] = i + 1
	}

	for _, hn := range s.groups["ungrouped"].hosts {
		if h := inv.Host(hn); h != nil {
			inv.Warnings = append(inv.Warnings, errAt(h.pos(), nil,
				"host %s is in no group (Ansible puts it in ungrouped); ezrestore only works on the hosts of etcd, kube_master (kube_control_plane) and kube_node, so it leaves %s alone",
				hn, hn).Error())
		}
	}
}

// warnAssumedNames warns, for a kubespray-style inventory, about the etcd
// hosts without etcd_member_name: their names are kubespray's default, which
// a deploy could have changed, so say what is assumed and what decides.
func (inv *Inventory) warnAssumedNames() {
	if inv.Style != StyleKubespray {
		return
	}
	var hosts, names []string
	for _, h := range inv.EtcdHosts() {
		if _, ok := h.Vars["etcd_member_name"]; !ok {
			hosts = append(hosts, h.Name)
			names = append(names, inv.defaultMemberName(h))
		}
	}
	if len(hosts) == 0 {
		return
	}
	inv.Warnings = append(inv.Warnings, errAt(inv.GroupPos(GroupEtcd), nil,
		"kubespray-style inventory (%s): etcd hosts %s have no etcd_member_name, so ezrestore assumes kubespray's default names %s (etcd<N> by position in group etcd); the name in each host's etcd unit is the truth, and plan and restore check it before changing anything (set etcd_member_name on a host if they differ)",
		inv.StyleReason, strings.Join(hosts, ", "), strings.Join(names, ", ")).Error())
}

// ansibleGroupHosts lists a group's hosts the way Ansible's groups['name']
// does: the group's own hosts in written order, then those of its children
// level by level (Ansible walks deeper levels in no fixed order; this takes
// the written one), each host once.
func (s *source) ansibleGroupHosts(name string) []string {
	g, ok := s.groups[name]
	if !ok {
		return nil
	}
	order := []*rawGroup{g}
	seen := map[string]bool{name: true}
	level := []*rawGroup{g}
	for len(level) > 0 {
		var next []*rawGroup
		for _, lg := range level {
			for _, cn := range lg.children {
				if !seen[cn] {
					seen[cn] = true
					next = append(next, s.groups[cn])
				}
			}
		}
		order = append(order, next...)
		level = next
	}
	var out []string
	in := map[string]bool{}
	for _, og := range order {
		for _, hn := range og.hosts {
			if !in[hn] {
				in[hn] = true
				out = append(out, hn)
			}
		}
	}
	return out
}
