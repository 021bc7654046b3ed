package inventory

import (
	"fmt"
	"net"
	"strconv"
)

// KubesprayDefaults names where the defaults below come from, for the
// variables' provenance (inventory describe, the route's sources).
const KubesprayDefaults = "kubespray's role defaults (roles/kubespray_defaults)"

// KubesprayBinDir is kubespray's bin_dir: where it installs etcd and etcdctl.
const KubesprayBinDir = "/usr/local/bin"

// applyKubesprayDefaults gives a kubespray-style inventory's hosts the
// variables kubespray's playbooks see from its role defaults when the
// inventory does not set them, so ezrestore reaches and reads the hosts as
// kubespray runs against them:
//
//   - bin_dir is /usr/local/bin;
//   - with a host named bastion in the inventory (kubespray's bastion
//     convention: `[bastion]` / `bastion ansible_host=x.x.x.x`), every other
//     host is reached through it. kubespray's default ansible_ssh_common_args
//     is a ProxyCommand running `ssh -W %h:%p -p PORT USER@HOST -i KEY` with
//     the bastion's host key unchecked; ezrestore takes the same hop as a
//     ProxyJump it dials itself, so the bastion's key is checked against
//     known_hosts like every host's.
//
// A value the inventory sets (host or group vars, -e) always wins, as it
// does over role defaults in Ansible.
func (inv *Inventory) applyKubesprayDefaults() {
	if inv.Style != StyleKubespray {
		return
	}
	bastion := inv.Host("bastion")
	for _, h := range inv.Hosts {
		if _, ok := h.Vars["bin_dir"]; !ok {
			h.Vars["bin_dir"] = KubesprayBinDir
			h.VarPos["bin_dir"] = Pos{File: KubesprayDefaults}
		}
		if bastion == nil || h == bastion {
			continue
		}
		if _, ok := h.Vars["ansible_ssh_common_args"]; ok {
			continue
		}
		h.Vars["ansible_ssh_common_args"] = "-o ProxyJump=" + bastionJump(bastion)
		h.VarPos["ansible_ssh_common_args"] = Pos{File: fmt.Sprintf("%s, for host bastion (%s)", KubesprayDefaults, bastion.pos())}
	}
}

// bastionJump is the bastion as a ProxyJump hop: user@address:port, as
// kubespray's ProxyCommand names it (ansible_user, ansible_host, ansible_port).
func bastionJump(b *Host) string {
	return b.User + "@" + net.JoinHostPort(b.Address, strconv.Itoa(b.Port))
}

// defaultPeerHost is the address in an etcd member's URLs when the
// inventory sets none of etcd_access_address, main_access_ip, access_ip
// and ip: kubeasz's inventories name hosts by their IP; kubespray then
// takes the host's default IPv4 address, a fact gathered on the host,
// whose best offline stand-in is the address the host is reached at
// (ansible_host). The unit on the host is the truth either way: preflight
// compares the two before anything changes.
func (inv *Inventory) defaultPeerHost(h *Host) string {
	if inv.Style == StyleKubespray && h.Address != "" {
		return h.Address
	}
	return h.Name
}
