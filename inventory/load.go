package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Load reads an Ansible inventory (INI, or YAML/JSON when the name ends in
// .yml, .yaml or .json or the content looks like YAML), then applies the
// extra-vars files in order (like ansible-playbook -e @file; a leading '@' is
// accepted), which win over everything in the inventory.
// LoadWithVars takes every form of -e.
func Load(path string, extraVarFiles ...string) (*Inventory, error) {
	extra, err := extraFromFiles(extraVarFiles)
	if err != nil {
		return nil, err
	}
	return load(path, "", extra)
}

// LoadWithVars is Load with extra vars as ParseExtraVars reads them.
func LoadWithVars(path string, extra ExtraVars) (*Inventory, error) {
	return load(path, "", extra)
}

// LoadCluster reads kubeasz's cluster dir: dir.Hosts(), with dir.Config()
// (when present) as extra vars below extraVarFiles, and _cluster_name_
// replaced by dir.Name as ezctl does when it creates the cluster.
// LoadClusterWithVars takes every form of -e.
func LoadCluster(dir ClusterDir, extraVarFiles ...string) (*Inventory, error) {
	extra, err := extraFromFiles(extraVarFiles)
	if err != nil {
		return nil, err
	}
	return LoadClusterWithVars(dir, extra)
}

// LoadClusterWithVars is LoadCluster with extra vars as ParseExtraVars reads
// them; they win over config.yml.
func LoadClusterWithVars(dir ClusterDir, extra ExtraVars) (*Inventory, error) {
	if _, err := os.Stat(dir.Hosts()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &clusterNotFound{name: dir.Name, path: dir.Hosts(), err: err}
		}
		return nil, fmt.Errorf("cluster %s: %w", dir.Name, err)
	}
	if _, err := os.Stat(dir.Config()); err == nil {
		m, err := readExtraFile(dir.Config())
		if err != nil {
			return nil, err
		}
		cfg := extraLayer{arg: "@" + dir.Config(), file: dir.Config(), vars: m}
		extra = ExtraVars{layers: append([]extraLayer{cfg}, extra.layers...)}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cluster %s: %w", dir.Name, err)
	}
	return load(dir.Hosts(), dir.Name, extra)
}

func load(path, cluster string, extra ExtraVars) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	s := newSource(path)
	if isYAMLInventory(path, data) {
		err = parseYAMLInventory(s, data)
	} else {
		err = parseINI(s, string(data))
	}
	if err != nil {
		return nil, err
	}
	if err := s.readVarsDirs(filepath.Dir(path)); err != nil {
		return nil, err
	}
	var layers []varMap
	for _, l := range extra.layers {
		layers = append(layers, l.vars)
	}
	inv, err := resolve(s, layers, cluster)
	if err != nil {
		return nil, err
	}
	inv.VarFiles = extra.Files()
	inv.Cluster = cluster
	return inv, nil
}

var reYAMLKeyLine = regexp.MustCompile(`^[^\s=\[#;][^=]*:(\s.*)?$`)

// isYAMLInventory decides between YAML and INI: by extension, else by the
// first line that is not blank or a comment.
func isYAMLInventory(path string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yml", ".yaml", ".json":
		return true
	case ".ini", ".cfg":
		return false
	}
	for _, line := range strings.Split(string(bytes.TrimPrefix(data, []byte("\ufeff"))), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '{' || line == "---" || strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "%YAML") {
			return true
		}
		return reYAMLKeyLine.MatchString(line) && !strings.Contains(line, "=")
	}
	return false
}

// resolve applies Ansible's precedence (all < parent groups < child groups,
// same depth by ansible_group_priority then name < host vars < extra vars in
// order), interpolates, fills the typed fields and checks the inventory.
func resolve(s *source, layers []varMap, cluster string) (*Inventory, error) {
	all, ungrouped := s.groups["all"], s.groups["ungrouped"]
	// Hosts in no group but all are ungrouped; groups without a parent are
	// children of all.
	for _, hn := range s.hostOrder {
		in := false
		for _, gn := range s.groupOrder {
			if gn != "all" && gn != "ungrouped" && s.groups[gn].hostSet[hn] {
				in = true
				break
			}
		}
		if !in && !ungrouped.hostSet[hn] {
			ungrouped.hostSet[hn] = true
			ungrouped.hosts = append(ungrouped.hosts, hn)
		}
	}
	for _, gn := range s.groupOrder {
		if g := s.groups[gn]; gn != "all" && len(g.parents) == 0 {
			g.parents = []string{"all"}
			all.children = append(all.children, gn)
		}
	}
	depth := map[string]int{}
	var depthOf func(string) int
	depthOf = func(gn string) int {
		if d, ok := depth[gn]; ok {
			return d
		}
		d := 0
		for _, p := range s.groups[gn].parents {
			if pd := depthOf(p) + 1; pd > d {
				d = pd
			}
		}
		depth[gn] = d
		return d
	}
	priority := map[string]int{}
	for _, gn := range s.groupOrder {
		depthOf(gn)
		priority[gn] = 1
		if v, ok := s.groups[gn].vars["ansible_group_priority"]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(v.val))
			if err != nil {
				return nil, errAt(v.pos, ErrBadVar, "ansible_group_priority of group %s must be a number, got %q", gn, v.val)
			}
			priority[gn] = n
		}
	}
	groupIndex := map[string]int{}
	for i, gn := range s.groupOrder {
		groupIndex[gn] = i
	}

	inv := &Inventory{File: s.file, Vars: map[string]string{}, VarPos: map[string]Pos{},
		Warnings: append([]string(nil), s.warnings...), groupPos: map[string]Pos{}}
	inv.groupTree = map[string]groupNode{}
	for _, gn := range s.groupOrder {
		g := s.groups[gn]
		if g.declared {
			inv.groupPos[gn] = g.pos
		}
		inv.groupOrder = append(inv.groupOrder, gn)
		inv.groupTree[gn] = groupNode{children: append([]string(nil), g.children...), hosts: append([]string(nil), g.hosts...)}
	}

	// All-level vars: [all:vars] and the extra layers.
	allVars := map[string]rawVar{}
	for _, m := range []varMap{all.vars, all.dirVars} {
		for k, v := range m {
			allVars[k] = v
		}
	}
	for _, l := range layers {
		for k, v := range l {
			allVars[k] = v
		}
	}
	r := newResolver(allVars, nil, cluster)
	for _, k := range sortedKeys(allVars) {
		v, _, err := r.get(k)
		if err != nil {
			return nil, err
		}
		inv.Vars[k] = v
		inv.VarPos[k] = allVars[k].pos
	}

	seenAddr := map[string]*Host{}
	for _, hn := range s.hostOrder {
		rh := s.hosts[hn]
		// The host's groups: direct ones and their ancestors.
		member := map[string]bool{}
		var up func(string)
		up = func(gn string) {
			if member[gn] {
				return
			}
			member[gn] = true
			for _, p := range s.groups[gn].parents {
				up(p)
			}
		}
		for _, gn := range s.groupOrder {
			if s.groups[gn].hostSet[hn] {
				up(gn)
			}
		}
		var groups []string
		for gn := range member {
			groups = append(groups, gn)
		}
		sort.Slice(groups, func(i, j int) bool {
			a, b := groups[i], groups[j]
			if depth[a] != depth[b] {
				return depth[a] < depth[b]
			}
			if priority[a] != priority[b] {
				return priority[a] < priority[b]
			}
			return a < b
		})
		// Ansible's order: inventory-file group vars (all first), then
		// group_vars/all, then group_vars/<group>, then the host's inventory
		// vars, then host_vars/<host>, then extra vars.
		vars := map[string]rawVar{}
		merge := func(m varMap) {
			for k, v := range m {
				vars[k] = v
			}
		}
		for _, gn := range groups {
			merge(s.groups[gn].vars)
		}
		merge(all.dirVars)
		for _, gn := range groups {
			if gn != "all" {
				merge(s.groups[gn].dirVars)
			}
		}
		merge(rh.vars)
		merge(rh.dirVars)
		for _, l := range layers {
			for k, v := range l {
				vars[k] = v
			}
		}
		h := &Host{Name: hn, File: rh.pos.File, Line: rh.pos.Line,
			Vars: map[string]string{}, VarPos: map[string]Pos{}}
		// Groups in inventory order, without all.
		for _, gn := range s.groupOrder {
			if member[gn] && gn != "all" {
				h.Groups = append(h.Groups, gn)
			}
		}
		// As Ansible: everything before the first dot, even of an IPv4 address.
		short, _, _ := strings.Cut(hn, ".")
		hr := newResolver(vars, map[string]string{
			"inventory_hostname":       hn,
			"inventory_hostname_short": short,
		}, cluster)
		for _, k := range sortedKeys(vars) {
			v, _, err := hr.get(k)
			if err != nil {
				return nil, err
			}
			h.Vars[k] = v
			h.VarPos[k] = vars[k].pos
		}
		h.undef = hr.undef
		if err := h.fillConnection(); err != nil {
			return nil, err
		}
		key := h.Address + ":" + strconv.Itoa(h.Port)
		if other, ok := seenAddr[key]; ok {
			return nil, errAt(h.pos(), ErrDuplicate, "host %s has the same address %s as host %s (%s)",
				h.Name, joinHostPort(h.Address, h.Port), other.Name, other.pos())
		}
		seenAddr[key] = h
		inv.Hosts = append(inv.Hosts, h)
	}

	inv.classify(s)
	inv.applyKubesprayDefaults()
	etcd := inv.EtcdHosts()
	etcdPos := inv.GroupPos(GroupEtcd)
	switch {
	case len(etcd) == 0:
		if etcdPos.Line > 0 {
			return nil, errAt(etcdPos, ErrNoEtcd, "group etcd has no hosts; ezrestore restores etcd and needs its members")
		}
		return nil, errAt(etcdPos, ErrNoEtcd, "no etcd group; ezrestore restores etcd and needs an [etcd] group listing its members")
	case len(etcd)%2 == 0:
		inv.Warnings = append(inv.Warnings, errAt(etcdPos, nil,
			"etcd has %d members, an even count: it tolerates no more failed members than %d would, and quorum needs %d",
			len(etcd), len(etcd)-1, len(etcd)/2+1).Error())
	}
	inv.warnAssumedNames()
	return inv, nil
}

// sortedKeys makes resolution, and so which variable a cycle error names,
// the same on every run.
func sortedKeys(m map[string]rawVar) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// fillConnection sets Address, Port, User, KeyFile, Become and BecomeUser from
// the connection variables (with Ansible's older ansible_ssh_* names as
// fallbacks).
func (h *Host) fillConnection() error {
	str := func(names ...string) (string, string, bool, error) {
		for _, n := range names {
			if _, ok := h.Vars[n]; ok {
				v, err := h.StrictVar(n)
				return n, v, true, err
			}
		}
		return "", "", false, nil
	}
	name, v, ok, err := str("ansible_host", "ansible_ssh_host")
	if err != nil {
		return err
	}
	h.Address = h.Name
	if ok {
		h.Address = strings.TrimSpace(v)
		if h.Address == "" {
			return errAt(h.VarPos[name], ErrNoAddress, "host %s has an empty %s: no address to connect to", h.Name, name)
		}
	}
	h.Port = 22
	if name, v, ok, err = str("ansible_port", "ansible_ssh_port"); err != nil {
		return err
	} else if ok {
		if !isPort(strings.TrimSpace(v)) {
			return errAt(h.VarPos[name], ErrBadVar, "%s of host %s must be a port number (1-65535), got %q", name, h.Name, v)
		}
		h.Port, _ = strconv.Atoi(strings.TrimSpace(v))
	}
	h.User = "root"
	if name, v, ok, err = str("ansible_user", "ansible_ssh_user"); err != nil {
		return err
	} else if ok {
		if v = strings.TrimSpace(v); v == "" {
			return errAt(h.VarPos[name], ErrBadVar, "host %s has an empty %s", h.Name, name)
		}
		h.User = v
	}
	if _, v, ok, err = str("ansible_ssh_private_key_file", "ansible_private_key_file"); err != nil {
		return err
	} else if ok {
		h.KeyFile = ExpandHome(strings.TrimSpace(v))
	}
	if name, v, ok, err = str("ansible_become"); err != nil {
		return err
	} else if ok {
		b, valid := parseBool(v)
		if !valid {
			return errAt(h.VarPos[name], ErrBadVar, "ansible_become of host %s must be true or false, got %q", h.Name, v)
		}
		h.Become = b
	}
	h.BecomeUser = "root"
	if name, v, ok, err = str("ansible_become_user"); err != nil {
		return err
	} else if ok {
		if v = strings.TrimSpace(v); v == "" {
			return errAt(h.VarPos[name], ErrBadVar, "host %s has an empty ansible_become_user", h.Name)
		}
		h.BecomeUser = v
	}
	return nil
}

// parseBool reads a boolean the way Ansible accepts one.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1", "y", "t":
		return true, true
	case "false", "no", "off", "0", "n", "f", "":
		return false, true
	}
	return false, false
}

// ExpandHome turns a leading ~ into the user's home dir, as Ansible and
// OpenSSH read paths; the SSH transport uses it too.
func ExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
