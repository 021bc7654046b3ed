package inventory

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ClusterInfo is one cluster dir under <base>/clusters/, read offline.
type ClusterInfo struct {
	Name string `json:"name" yaml:"name"`
	Path string `json:"path" yaml:"path"`
	// HostsFile says whether clusters/<name>/hosts exists; without it the
	// dir is not a cluster ezrestore can work on.
	HostsFile bool `json:"hosts_file" yaml:"hosts_file"`
	// EtcdHosts is the number of hosts in group etcd; Style is kubeasz or
	// kubespray; Warnings are the inventory's warnings. All three are empty
	// when the inventory cannot be read, and Error says why.
	EtcdHosts int      `json:"etcd_hosts" yaml:"etcd_hosts"`
	Style     Style    `json:"style,omitempty" yaml:"style,omitempty"`
	Warnings  []string `json:"warnings,omitempty" yaml:"warnings,omitempty"`
	// Backups counts backup/snapshot_*.db; LastBackup is the newest one's
	// modification time and LastBackupFile its path. Nothing is opened: a
	// damaged file counts too (snapshot inspect checks one).
	Backups        int        `json:"backups" yaml:"backups"`
	LastBackup     *time.Time `json:"last_backup,omitempty" yaml:"last_backup,omitempty"`
	LastBackupFile string     `json:"last_backup_file,omitempty" yaml:"last_backup_file,omitempty"`
	// LastBackupAge is how old LastBackup was when listed; Stale is true
	// when it is older than the listing's limit, or there is none (FlagStale).
	LastBackupAge time.Duration `json:"last_backup_age_ns,omitempty" yaml:"last_backup_age_ns,omitempty"`
	Stale         bool          `json:"stale" yaml:"stale"`
	// Error is why the cluster's inventory or backup dir could not be read.
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
}

// ListClusters lists the cluster dirs under <base>/clusters/, by name. A
// cluster whose inventory does not load is listed with Error set; only a
// missing or unreadable clusters dir is an error.
func ListClusters(base string) ([]ClusterInfo, error) {
	root := filepath.Join(base, "clusters")
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no clusters dir %s: is --base (or EZRESTORE_BASE) right? kubeasz keeps clusters in /etc/kubeasz/clusters: %w", root, err)
		}
		return nil, fmt.Errorf("clusters: %w", err)
	}
	out := []ClusterInfo{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !e.IsDir() {
			// A symlink to a dir is a cluster too.
			fi, err := os.Stat(filepath.Join(root, e.Name()))
			if err != nil || !fi.IsDir() {
				continue
			}
		}
		out = append(out, describeCluster(NewClusterDir(base, e.Name())))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func describeCluster(dir ClusterDir) ClusterInfo {
	ci := ClusterInfo{Name: dir.Name, Path: dir.Path}
	var errs []string
	if _, err := os.Stat(dir.Hosts()); err == nil {
		ci.HostsFile = true
		if inv, err := LoadCluster(dir); err != nil {
			errs = append(errs, err.Error())
		} else {
			ci.EtcdHosts, ci.Style, ci.Warnings = len(inv.EtcdHosts()), inv.Style, inv.Warnings
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err.Error())
	}
	snaps, err := filepath.Glob(filepath.Join(dir.BackupDir(), "snapshot_*.db"))
	if err != nil {
		errs = append(errs, err.Error())
	}
	for _, p := range snaps {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		ci.Backups++
		if t := fi.ModTime(); ci.LastBackup == nil || t.After(*ci.LastBackup) {
			ci.LastBackup, ci.LastBackupFile = &t, p
		}
	}
	ci.Error = strings.Join(errs, "; ")
	return ci
}

// WriteClustersText prints clusters as a table for a person.
func WriteClustersText(w io.Writer, clusters []ClusterInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tETCD HOSTS\tSTYLE\tBACKUPS\tLAST BACKUP\tAGE\tNOTE")
	for _, c := range clusters {
		last, age := "-", "-"
		if c.LastBackup != nil {
			last = c.LastBackup.Local().Format("2006-01-02 15:04")
			age = shortAge(c.LastBackupAge)
		}
		if c.Stale && c.HostsFile {
			age += " STALE"
		}
		note := c.Error
		switch {
		case !c.HostsFile && note == "":
			note = "no hosts file: not a kubeasz cluster dir"
		case note == "" && len(c.Warnings) > 0:
			note = fmt.Sprintf("%d warning(s): ezrestore inventory %s", len(c.Warnings), c.Name)
		}
		etcd := strconv.Itoa(c.EtcdHosts)
		if !c.HostsFile || c.Error != "" {
			etcd = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Name, etcd, dash(string(c.Style)), c.Backups, last, age, note)
	}
	return tw.Flush()
}
