package inventory

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Description is an offline view of what an inventory targets: its groups as
// a tree, and per host what ezrestore will use and where each value came
// from. Nothing is contacted to build it. Field names are snake_case in JSON
// and YAML.
type Description struct {
	File    string `json:"file" yaml:"file"`
	Cluster string `json:"cluster,omitempty" yaml:"cluster,omitempty"`
	// Style is kubeasz or kubespray (see Inventory.Style); StyleReason says why.
	Style       Style    `json:"style,omitempty" yaml:"style,omitempty"`
	StyleReason string   `json:"style_reason,omitempty" yaml:"style_reason,omitempty"`
	VarFiles    []string `json:"var_files,omitempty" yaml:"var_files,omitempty"`
	// Groups is the tree under all: each group with its child groups and its
	// own hosts, as written (a group under two parents appears under both).
	Groups *GroupDescription  `json:"groups,omitempty" yaml:"groups,omitempty"`
	Hosts  []*HostDescription `json:"hosts" yaml:"hosts"`
	// Warnings are the inventory's warnings, each "file:line: message".
	Warnings []string `json:"warnings" yaml:"warnings"`
	// Error is why the etcd members cannot be listed (two with one name, a
	// bad URL), when they cannot; the per-host errors are in Hosts.
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
}

// GroupDescription is one group of the tree.
type GroupDescription struct {
	Name string `json:"name" yaml:"name"`
	// DefinedAt is where the group was first written; empty for all and
	// ungrouped, which Ansible makes itself.
	DefinedAt string              `json:"defined_at,omitempty" yaml:"defined_at,omitempty"`
	Children  []*GroupDescription `json:"children,omitempty" yaml:"children,omitempty"`
	Hosts     []string            `json:"hosts,omitempty" yaml:"hosts,omitempty"`
}

// Setting is one value ezrestore will use, with where it came from.
type Setting[T any] struct {
	Value T `json:"value" yaml:"value"`
	// Var is the inventory variable that set it; empty for a default.
	Var string `json:"var,omitempty" yaml:"var,omitempty"`
	// From is the file:line that set Var (a -e argument is named as typed),
	// "default" when ezrestore's (or the deployment tool's) default applies,
	// or "unset" when nothing sets it and ezrestore reads it from the host
	// (the etcd unit, PATH).
	From string `json:"from" yaml:"from"`
}

// Where values come from, besides a file:line.
const (
	FromDefault = "default"
	FromUnset   = "unset"
)

// HostDescription is what ezrestore will use for one host.
type HostDescription struct {
	Name      string   `json:"name" yaml:"name"`
	DefinedAt string   `json:"defined_at" yaml:"defined_at"`
	Groups    []string `json:"groups" yaml:"groups"`

	Address    Setting[string] `json:"address" yaml:"address"`
	Port       Setting[int]    `json:"port" yaml:"port"`
	User       Setting[string] `json:"user" yaml:"user"`
	Become     Setting[bool]   `json:"become" yaml:"become"`
	BecomeUser Setting[string] `json:"become_user" yaml:"become_user"`
	KeyFile    Setting[string] `json:"key_file" yaml:"key_file"`
	// SSHCommonArgs and SSHExtraArgs are ansible_ssh_common_args and
	// ansible_ssh_extra_args as written; how they are followed (ProxyJump,
	// options) is the transport's business and shows in Reach.
	SSHCommonArgs Setting[string] `json:"ssh_common_args" yaml:"ssh_common_args"`
	SSHExtraArgs  Setting[string] `json:"ssh_extra_args" yaml:"ssh_extra_args"`
	BinDir        Setting[string] `json:"bin_dir" yaml:"bin_dir"`

	// Etcd is set for the hosts of group etcd.
	Etcd *EtcdDescription `json:"etcd,omitempty" yaml:"etcd,omitempty"`

	// Reach is how the host will really be reached once ssh_config, keys,
	// agent and jump hosts are taken into account. The inventory cannot know
	// it: the caller (the command, through the SSH transport) sets it before
	// printing; nil prints nothing. WriteText prints a fmt.Stringer as is and
	// anything else as JSON.
	Reach any `json:"reach,omitempty" yaml:"reach,omitempty"`
}

// EtcdDescription is how an etcd host takes part in the cluster, as the
// inventory says; preflight checks it against the host's etcd unit.
type EtcdDescription struct {
	MemberName Setting[string] `json:"member_name" yaml:"member_name"`
	PeerURL    Setting[string] `json:"peer_url" yaml:"peer_url"`
	ClientURL  Setting[string] `json:"client_url" yaml:"client_url"`
	DataDir    Setting[string] `json:"data_dir" yaml:"data_dir"`
	WALDir     Setting[string] `json:"wal_dir" yaml:"wal_dir"`
	// Error is why this host's member cannot be described (a bad URL, an
	// undefined variable); the settings above are then partial.
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
}

// Describe builds the offline view of inv.
func Describe(inv *Inventory) *Description {
	d := &Description{File: inv.File, Cluster: inv.Cluster, Style: inv.Style, StyleReason: inv.StyleReason,
		VarFiles: inv.VarFiles, Warnings: append([]string{}, inv.Warnings...), Hosts: []*HostDescription{}}
	d.Groups = inv.describeGroup("all", 0)
	if _, err := inv.EtcdMembers(); err != nil {
		d.Error = err.Error()
	}
	for _, h := range inv.Hosts {
		d.Hosts = append(d.Hosts, inv.describeHost(h))
	}
	return d
}

func (inv *Inventory) describeGroup(name string, depth int) *GroupDescription {
	g := &GroupDescription{Name: name}
	if p, ok := inv.groupPos[name]; ok && p.Line > 0 {
		g.DefinedAt = p.String()
	}
	node := inv.groupTree[name]
	if depth > 100 { // loops are refused when parsing; this only bounds the walk
		return g
	}
	for _, c := range node.children {
		if c == "ungrouped" && len(inv.groupTree[c].hosts) == 0 {
			continue
		}
		g.Children = append(g.Children, inv.describeGroup(c, depth+1))
	}
	// As ansible-inventory --graph: all lists groups; hosts only in all
	// show under ungrouped.
	if name != "all" {
		g.Hosts = append(g.Hosts, node.hosts...)
	}
	return g
}

// setting reads the first of names that the host sets.
func (h *Host) setting(names ...string) (Setting[string], bool) {
	for _, n := range names {
		if v, ok := h.Vars[n]; ok {
			return Setting[string]{Value: v, Var: n, From: h.VarPos[n].String()}, true
		}
	}
	return Setting[string]{From: FromUnset}, false
}

func (inv *Inventory) describeHost(h *Host) *HostDescription {
	d := &HostDescription{Name: h.Name, DefinedAt: h.pos().String(), Groups: append([]string{}, h.Groups...)}
	// The typed fields hold the effective values; the variables say where
	// they came from (the same names fillConnection reads, in its order).
	from := func(value string, names ...string) Setting[string] {
		if s, ok := h.setting(names...); ok {
			s.Value = value
			return s
		}
		return Setting[string]{Value: value, From: FromDefault}
	}
	d.Address = from(h.Address, "ansible_host", "ansible_ssh_host")
	p := from("", "ansible_port", "ansible_ssh_port")
	d.Port = Setting[int]{Value: h.Port, Var: p.Var, From: p.From}
	d.User = from(h.User, "ansible_user", "ansible_ssh_user")
	b := from("", "ansible_become")
	d.Become = Setting[bool]{Value: h.Become, Var: b.Var, From: b.From}
	d.BecomeUser = from(h.BecomeUser, "ansible_become_user")
	d.KeyFile, _ = h.setting("ansible_ssh_private_key_file", "ansible_private_key_file")
	d.KeyFile.Value = h.KeyFile
	d.SSHCommonArgs, _ = h.setting("ansible_ssh_common_args")
	d.SSHExtraArgs, _ = h.setting("ansible_ssh_extra_args")
	d.BinDir, _ = h.setting("bin_dir")
	if h.InGroup(GroupEtcd) {
		d.Etcd = inv.describeEtcd(h)
	}
	return d
}

func (inv *Inventory) describeEtcd(h *Host) *EtcdDescription {
	e := &EtcdDescription{}
	e.DataDir, _ = h.setting("ETCD_DATA_DIR", "etcd_data_dir")
	e.WALDir, _ = h.setting("ETCD_WAL_DIR")
	m, err := h.etcdMember(inv.defaultMemberName(h), inv.defaultPeerHost(h))
	if err != nil {
		e.Error = err.Error()
	}
	e.MemberName = Setting[string]{Value: m.Name, From: FromDefault}
	if s, ok := h.setting("etcd_member_name"); ok {
		e.MemberName = Setting[string]{Value: m.Name, Var: s.Var, From: s.From}
	}
	// The URLs' address comes from the first address variable set (see
	// EtcdMember.PeerURL), unless the URL itself is set.
	addr := Setting[string]{From: FromDefault}
	for _, n := range []string{"etcd_access_address", "main_access_ip", "access_ip", "ip"} {
		if v, ok := h.Vars[n]; ok && v != "" {
			addr = Setting[string]{Var: n, From: h.VarPos[n].String()}
			break
		}
	}
	e.PeerURL = Setting[string]{Value: m.PeerURL, Var: addr.Var, From: addr.From}
	e.ClientURL = Setting[string]{Value: m.ClientURL, Var: addr.Var, From: addr.From}
	if s, ok := h.setting("etcd_peer_url"); ok {
		e.PeerURL = Setting[string]{Value: m.PeerURL, Var: s.Var, From: s.From}
	}
	if s, ok := h.setting("etcd_client_url"); ok {
		e.ClientURL = Setting[string]{Value: m.ClientURL, Var: s.Var, From: s.From}
	}
	return e
}

// WriteText prints the description for a person: the group tree as
// ansible-inventory --graph draws it, a table of hosts, the etcd members,
// where each value that is not a default came from, and the warnings.
func (d *Description) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "Inventory: %s\n", d.File)
	if d.Cluster != "" {
		fmt.Fprintf(ew, "Cluster:   %s\n", d.Cluster)
	}
	fmt.Fprintf(ew, "Style:     %s (%s)\n", d.Style, d.StyleReason)
	if len(d.VarFiles) > 0 {
		fmt.Fprintf(ew, "Vars files: %s\n", strings.Join(d.VarFiles, ", "))
	}
	fmt.Fprintln(ew)
	if d.Groups != nil {
		writeGraph(ew, d.Groups, 0)
	}

	fmt.Fprintln(ew)
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tPORT\tUSER\tBECOME\tKEY FILE\tBIN DIR\tGROUPS")
	for _, h := range d.Hosts {
		become := "no"
		if h.Become.Value {
			become = "yes (" + h.BecomeUser.Value + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Address.Value, h.Port.Value, h.User.Value,
			become, dash(h.KeyFile.Value), dash(h.BinDir.Value), strings.Join(h.Groups, ","))
	}
	_ = tw.Flush()

	var etcd []*HostDescription
	for _, h := range d.Hosts {
		if h.Etcd != nil {
			etcd = append(etcd, h)
		}
	}
	if len(etcd) > 0 {
		fmt.Fprintln(ew)
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ETCD MEMBER\tHOST\tPEER URL\tCLIENT URL\tDATA DIR\tWAL DIR")
		for _, h := range etcd {
			e := h.Etcd
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.MemberName.Value, h.Name, e.PeerURL.Value, e.ClientURL.Value,
				dirText(e.DataDir, "(from the unit)"), dirText(e.WALDir, "(in the data dir)"))
		}
		_ = tw.Flush()
	}

	fmt.Fprintln(ew)
	fmt.Fprintln(ew, "Where values come from (anything not listed is a default):")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tSETTING\tVARIABLE\tFROM")
	for _, h := range d.Hosts {
		for _, s := range h.sources() {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", h.Name, s[0], s[1], s[2])
		}
	}
	_ = tw.Flush()

	for _, h := range d.Hosts {
		if h.Reach == nil {
			continue
		}
		if s, ok := h.Reach.(fmt.Stringer); ok {
			fmt.Fprintf(ew, "\nReach %s: %s\n", h.Name, s)
		} else if b, err := json.Marshal(h.Reach); err == nil {
			fmt.Fprintf(ew, "\nReach %s: %s\n", h.Name, b)
		}
	}
	for _, h := range d.Hosts {
		if h.Etcd != nil && h.Etcd.Error != "" {
			fmt.Fprintf(ew, "\nError: %s\n", h.Etcd.Error)
		}
	}
	if d.Error != "" {
		fmt.Fprintf(ew, "\nError: %s\n", d.Error)
	}
	if len(d.Warnings) > 0 {
		fmt.Fprintln(ew, "\nWarnings:")
		for _, wn := range d.Warnings {
			fmt.Fprintf(ew, "  - %s\n", wn)
		}
	}
	return ew.err
}

// sources lists the host's settings that something in the inventory set,
// as {setting, variable, from}.
func (h *HostDescription) sources() [][3]string {
	var out [][3]string
	add := func(name, v, from string) {
		if v != "" {
			out = append(out, [3]string{name, v, from})
		}
	}
	add("address", h.Address.Var, h.Address.From)
	add("port", h.Port.Var, h.Port.From)
	add("user", h.User.Var, h.User.From)
	add("become", h.Become.Var, h.Become.From)
	add("become_user", h.BecomeUser.Var, h.BecomeUser.From)
	add("key_file", h.KeyFile.Var, h.KeyFile.From)
	add("ssh_common_args", h.SSHCommonArgs.Var, h.SSHCommonArgs.From+": "+strconv.Quote(h.SSHCommonArgs.Value))
	add("ssh_extra_args", h.SSHExtraArgs.Var, h.SSHExtraArgs.From+": "+strconv.Quote(h.SSHExtraArgs.Value))
	add("bin_dir", h.BinDir.Var, h.BinDir.From)
	if e := h.Etcd; e != nil {
		add("member_name", e.MemberName.Var, e.MemberName.From)
		add("peer_url", e.PeerURL.Var, e.PeerURL.From)
		add("client_url", e.ClientURL.Var, e.ClientURL.From)
		add("data_dir", e.DataDir.Var, e.DataDir.From)
		add("wal_dir", e.WALDir.Var, e.WALDir.From)
	}
	return out
}

// writeGraph draws g and its subtree as ansible-inventory --graph does.
func writeGraph(w io.Writer, g *GroupDescription, depth int) {
	if depth == 0 {
		fmt.Fprintf(w, "@%s:\n", g.Name)
	} else {
		fmt.Fprintf(w, "%s  |--@%s:\n", strings.Repeat("  |", depth-1), g.Name)
	}
	if depth > 100 {
		return
	}
	for _, c := range g.Children {
		writeGraph(w, c, depth+1)
	}
	for _, h := range g.Hosts {
		fmt.Fprintf(w, "%s--%s\n", strings.Repeat("  |", depth+1), h)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dirText shows a dir setting; empty means what the etcd unit says (data
// dir) or "inside the data dir" (WAL dir, as etcd treats an empty --wal-dir).
func dirText(s Setting[string], empty string) string {
	switch {
	case s.From == FromUnset:
		return "(from the unit)"
	case s.Value == "":
		return empty
	}
	return s.Value
}

// errWriter keeps the first write error so the printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	_, e.err = e.w.Write(p)
	return len(p), nil
}
