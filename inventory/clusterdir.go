package inventory

import (
	"os"
	"path/filepath"
)

// DefaultBase is where kubeasz keeps its clusters: $EZRESTORE_BASE, else /etc/kubeasz.
func DefaultBase() string {
	if b := os.Getenv("EZRESTORE_BASE"); b != "" {
		return b
	}
	return "/etc/kubeasz"
}

// ClusterDir is kubeasz's per-cluster directory, <base>/clusters/<name>/.
// Every file ezrestore reads or writes for a cluster is named here, so the lab
// that writes the layout and the commands that read it cannot drift apart.
type ClusterDir struct {
	Base string
	Name string
	Path string
}

// NewClusterDir names the directory of cluster name under base.
func NewClusterDir(base, name string) ClusterDir {
	return ClusterDir{Base: base, Name: name, Path: filepath.Join(base, "clusters", name)}
}

func (d ClusterDir) Hosts() string       { return filepath.Join(d.Path, "hosts") }
func (d ClusterDir) Config() string      { return filepath.Join(d.Path, "config.yml") }
func (d ClusterDir) BackupDir() string   { return filepath.Join(d.Path, "backup") }
func (d ClusterDir) SSLDir() string      { return filepath.Join(d.Path, "ssl") }
func (d ClusterDir) SSHDir() string      { return filepath.Join(d.Path, "ssh") }
func (d ClusterDir) PrivateKey() string  { return filepath.Join(d.Path, "ssh", "id_ed25519") }
func (d ClusterDir) KnownHosts() string  { return filepath.Join(d.Path, "ssh", "known_hosts") }
func (d ClusterDir) RestoresDir() string { return filepath.Join(d.Path, "restores") }
