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

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator/transport"
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
	// SSH is how every host of this cluster is reached.
	SSH transport.Options
}

// Open reads the inventory and derives the SSH setup. Keys: each host's
// ansible_ssh_private_key_file, then -i keys, then the cluster dir's
// ssh/id_ed25519 when present (the lab's layout), then ssh-agent, then
// ~/.ssh/id_*. Known hosts: the cluster dir's ssh/known_hosts when present,
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
	return c, nil
}

func sshOptions(dir string, sel Selector) transport.Options {
	o := transport.Options{AcceptNewHostKeys: sel.AcceptNewHostKeys}
	o.IdentityFiles = append(o.IdentityFiles, sel.IdentityFiles...)
	if key := filepath.Join(dir, "ssh", "id_ed25519"); fileExists(key) {
		o.IdentityFiles = append(o.IdentityFiles, key)
	}
	if kh := filepath.Join(dir, "ssh", "known_hosts"); fileExists(kh) {
		o.KnownHostsFiles = append(o.KnownHostsFiles, kh)
	}
	if home, err := os.UserHomeDir(); err == nil {
		o.KnownHostsFiles = append(o.KnownHostsFiles, filepath.Join(home, ".ssh", "known_hosts"))
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
