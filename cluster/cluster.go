// Package cluster opens a cluster the way every command that reaches hosts
// does (restore, plan, status, backup): it reads the inventory (a kubeasz
// cluster dir or any Ansible inventory), says where backups and run records
// live, and sets up SSH once, so that every command honours the same keys,
// known_hosts files and options.
//
// It must not import the engine's callers (restore, backup, cmd).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// Selector is how an operator names a cluster and how to reach its hosts.
type Selector struct {
	// Base and Cluster name <Base>/clusters/<Cluster>/ (kubeasz's layout);
	// or Inventory names any inventory file.
	Base, Cluster string
	Inventory     string
	// ExtraVars are the -e arguments, parsed (inventory.ParseExtraVars).
	ExtraVars inventory.ExtraVars
	// IdentityFiles are keys given with -i on the command line, tried after
	// the host's own ansible_ssh_private_key_file.
	IdentityFiles []string
	// AcceptNewHostKeys trusts hosts with no recorded key and records them.
	AcceptNewHostKeys bool
}

// Cluster is an opened cluster: its inventory, its dirs and its SSH setup.
type Cluster struct {
	// Name is the kubeasz cluster name, or the inventory file's path.
	Name      string
	Inventory *inventory.Inventory
	// Dir is the cluster dir (kubeasz's) or the inventory file's dir.
	Dir string
	// BackupDir holds backups; RecordDir the run records.
	BackupDir, RecordDir string
	// Members are the etcd members (set by OpenEtcd, not by Open).
	Members []inventory.EtcdMember
	// SSH is how every host of this cluster is reached.
	SSH transport.Options
	// Routes are each host's resolved route, by inventory name
	// (transport.Resolve: inventory, ssh arguments, ~/.ssh/config).
	Routes map[string]*transport.Route
	// SSHWarnings are the SSH options of any host that ezrestore does not
	// follow, one line each (hosts sharing one setting share the line);
	// they are also among Inventory.Warnings.
	SSHWarnings []string
}

// Open reads the inventory and derives the SSH setup, then resolves every
// host's route (transport.Resolve). Keys: each host's
// ansible_ssh_private_key_file and the IdentityFile options of its ssh
// arguments and ~/.ssh/config, then --private-key keys, then the cluster
// dir's ssh/id_ed25519 when present (the lab's layout), then ~/.ssh/id_*,
// then ssh-agent. Known hosts: the files its ssh arguments and
// ~/.ssh/config name, then the cluster dir's ssh/known_hosts when present,
// then ~/.ssh/known_hosts; new keys (with AcceptNewHostKeys) go to the first.
func Open(sel Selector) (*Cluster, error) {
	c := &Cluster{}
	var err error
	switch {
	case sel.Inventory != "" && sel.Cluster != "":
		return nil, errors.New("give a cluster name or -i INVENTORY, not both")
	case sel.Inventory != "":
		if c.Inventory, err = inventory.LoadWithVars(sel.Inventory, sel.ExtraVars); err != nil {
			return nil, err
		}
		c.Name, c.Dir = c.Inventory.File, filepath.Dir(c.Inventory.File)
	case sel.Cluster != "":
		cd := inventory.NewClusterDir(sel.Base, sel.Cluster)
		if c.Inventory, err = inventory.LoadClusterWithVars(cd, sel.ExtraVars); err != nil {
			return nil, err
		}
		c.Name, c.Dir = sel.Cluster, cd.Path
	default:
		return nil, fmt.Errorf("name a cluster (a dir under %s) or pass -i INVENTORY", filepath.Join(sel.Base, "clusters"))
	}
	c.BackupDir, c.RecordDir = filepath.Join(c.Dir, "backup"), filepath.Join(c.Dir, "restores")
	c.SSH = sshOptions(c.Dir, sel)
	c.resolveRoutes()
	return c, nil
}

// resolveRoutes resolves every host's route once and files the options
// not followed among the inventory's warnings, so that every command
// (plan, status, inventory) shows them.
func (c *Cluster) resolveRoutes() {
	c.Routes = map[string]*transport.Route{}
	type key struct{ option, from, msg string }
	var order []key
	hosts := map[key][]string{}
	for _, h := range c.Inventory.Hosts {
		r, warns := transport.Resolve(h, c.SSH)
		c.Routes[h.Name] = r
		for _, w := range warns {
			k := key{w.Option, w.From, w.Message}
			if _, ok := hosts[k]; !ok {
				order = append(order, k)
			}
			hosts[k] = append(hosts[k], h.Name)
		}
	}
	for _, k := range order {
		line := fmt.Sprintf("%s: %s: %s (host %s)", k.from, k.option, k.msg, strings.Join(hosts[k], ", "))
		c.SSHWarnings = append(c.SSHWarnings, line)
		c.Inventory.Warnings = append(c.Inventory.Warnings, line)
	}
}

// DescribeReach says, for each host by inventory name, how it will be
// reached: address, port, user, jump hosts or proxy command, keys,
// known_hosts files and host-key policy, each with where it came from. Its
// values are *transport.Route (a fmt.Stringer for text, snake_case JSON),
// for inventory.HostDescription.Reach.
func DescribeReach(c *Cluster) map[string]any {
	out := make(map[string]any, len(c.Routes))
	for name, r := range c.Routes {
		out[name] = r
	}
	return out
}

func sshOptions(dir string, sel Selector) transport.Options {
	o := transport.Options{AcceptNewHostKeys: sel.AcceptNewHostKeys, Sources: map[string]string{}}
	for _, k := range sel.IdentityFiles {
		o.IdentityFiles = append(o.IdentityFiles, k)
		o.Sources[k] = "--private-key"
	}
	if key := filepath.Join(dir, "ssh", "id_ed25519"); fileExists(key) {
		o.IdentityFiles = append(o.IdentityFiles, key)
		o.Sources[key] = "cluster dir"
	}
	if kh := filepath.Join(dir, "ssh", "known_hosts"); fileExists(kh) {
		o.KnownHostsFiles = append(o.KnownHostsFiles, kh)
		o.Sources[kh] = "cluster dir"
	}
	if home, err := os.UserHomeDir(); err == nil {
		kh := filepath.Join(home, ".ssh", "known_hosts")
		o.KnownHostsFiles = append(o.KnownHostsFiles, kh)
		o.Sources[kh] = "default"
	}
	return o
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Connect opens one connection to each of hosts, at most forks at a time; the
// pool's Failed says why each other host could not be reached.
func (c *Cluster) Connect(ctx context.Context, hosts []*inventory.Host, forks int) *transport.Pool {
	return transport.Connect(ctx, hosts, c.SSH, forks)
}

// OpenEtcd is Open for the commands that work on etcd (restore, plan,
// status, backup, rollback, prune): it also resolves the etcd members, and a
// cluster whose members cannot be named is an error.
func OpenEtcd(sel Selector) (*Cluster, error) {
	c, err := Open(sel)
	if err != nil {
		return nil, err
	}
	if c.Members, err = c.Inventory.EtcdMembers(); err != nil {
		return nil, err
	}
	return c, nil
}
