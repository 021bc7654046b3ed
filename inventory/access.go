package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// EtcdHosts are the hosts of the etcd group, in inventory order.
func (inv *Inventory) EtcdHosts() []*Host { return inv.Group(GroupEtcd) }

// Masters are the hosts of kube_master (kubespray: kube_control_plane).
func (inv *Inventory) Masters() []*Host { return inv.Group(GroupMaster) }

// Nodes are the hosts of kube_node; a host that is also a master is in both.
func (inv *Inventory) Nodes() []*Host { return inv.Group(GroupNode) }

// Host returns the host named name (inventory_hostname), or nil.
func (inv *Inventory) Host(name string) *Host {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// GroupPos is where group was first written; Line is 0 when the inventory
// has no such group.
func (inv *Inventory) GroupPos(group string) Pos {
	if p, ok := inv.groupPos[group]; ok {
		return p
	}
	return Pos{File: inv.File}
}

// EtcdMembers describes every etcd host as an etcd member: name, peer and
// client URL. It fails on an empty etcd group and on two members with the same
// name or peer URL, naming the file and line.
func (inv *Inventory) EtcdMembers() ([]EtcdMember, error) {
	hosts := inv.EtcdHosts()
	if len(hosts) == 0 {
		return nil, errAt(inv.GroupPos(GroupEtcd), ErrNoEtcd, "group etcd has no hosts")
	}
	var out []EtcdMember
	byName, byPeer := map[string]*Host{}, map[string]*Host{}
	for _, h := range hosts {
		m, err := h.etcdMember(inv.defaultMemberName(h), inv.defaultPeerHost(h))
		if err != nil {
			return nil, err
		}
		if o, ok := byName[m.Name]; ok {
			return nil, errAt(h.varOrHostPos("etcd_member_name"), ErrDuplicate,
				"etcd members %s and %s (%s) have the same name %s", o.Name, h.Name, o.pos(), m.Name)
		}
		if o, ok := byPeer[m.PeerURL]; ok {
			return nil, errAt(h.varOrHostPos("etcd_peer_url"), ErrDuplicate,
				"etcd members %s and %s (%s) have the same peer URL %s", o.Name, h.Name, o.pos(), m.PeerURL)
		}
		byName[m.Name], byPeer[m.PeerURL] = h, h
		out = append(out, m)
	}
	return out, nil
}

// defaultMemberName is the member name the deployment tool gives an etcd
// host without etcd_member_name (see EtcdMember.Name).
func (inv *Inventory) defaultMemberName(h *Host) string {
	if inv.Style == StyleKubespray {
		if i, ok := inv.etcdIndex[h.Name]; ok {
			return "etcd" + strconv.Itoa(i)
		}
	}
	return "etcd-" + h.Name
}

func (h *Host) etcdMember(defaultName, defaultAddr string) (EtcdMember, error) {
	m := EtcdMember{Host: h, Name: defaultName}
	if v, ok, err := h.strictOpt("etcd_member_name"); err != nil {
		return m, err
	} else if ok {
		if v == "" {
			return m, h.VarError("etcd_member_name", "etcd_member_name of host %s is empty", h.Name)
		}
		m.Name = v
	}
	addr := defaultAddr
	for _, n := range []string{"etcd_access_address", "main_access_ip", "access_ip", "ip"} {
		if v, ok, err := h.strictOpt(n); err != nil {
			return m, err
		} else if ok && v != "" {
			addr = v
			break
		}
	}
	if strings.Contains(addr, ":") && !strings.HasPrefix(addr, "[") {
		addr = "[" + addr + "]"
	}
	m.PeerURL, m.ClientURL = "https://"+addr+":2380", "https://"+addr+":2379"
	for _, u := range []struct {
		name string
		dst  *string
	}{{"etcd_peer_url", &m.PeerURL}, {"etcd_client_url", &m.ClientURL}} {
		if v, ok, err := h.strictOpt(u.name); err != nil {
			return m, err
		} else if ok {
			if !strings.Contains(v, "://") {
				return m, h.VarError(u.name, "%s of host %s must be a URL like https://10.0.0.1:2380, got %q", u.name, h.Name, v)
			}
			*u.dst = v
		}
	}
	return m, nil
}

// StrictVar returns variable name of the host for a use that matters: it
// fails, naming the variable and where it was set, when the variable is unset
// or its value still uses an undefined variable ({{ x }} left as written).
func (h *Host) StrictVar(name string) (string, error) {
	v, ok, err := h.strictOpt(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errAt(h.pos(), ErrBadVar, "host %s has no variable %s", h.Name, name)
	}
	return v, nil
}

// strictOpt is StrictVar for an optional variable: ok is false when unset.
func (h *Host) strictOpt(name string) (string, bool, error) {
	v, ok := h.Vars[name]
	if !ok {
		return "", false, nil
	}
	if u := h.undef[name]; len(u) > 0 {
		return "", true, h.VarError(name, "%s of host %s uses undefined variable %s (value %q)", name, h.Name, u[0], v)
	}
	if strings.Contains(v, "{{") || strings.Contains(v, "{%") {
		return "", true, h.VarError(name, "%s of host %s is a template ezrestore cannot evaluate (%q); set it to a plain value", name, h.Name, v)
	}
	return v, true, nil
}

// VarError is an error about variable name of the host, at the place the
// variable was set (or the host's line when it is not set).
func (h *Host) VarError(name, format string, args ...any) error {
	return errAt(h.varOrHostPos(name), ErrBadVar, format, args...)
}

func (h *Host) varOrHostPos(name string) Pos {
	if p, ok := h.VarPos[name]; ok {
		return p
	}
	return h.pos()
}

func (h *Host) pos() Pos { return Pos{File: h.File, Line: h.Line} }

// String is the host's name and, when different, its address.
func (h *Host) String() string {
	if h.Address == "" || h.Address == h.Name {
		return h.Name
	}
	return fmt.Sprintf("%s (%s)", h.Name, h.Address)
}
