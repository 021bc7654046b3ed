// Package inventory reads a cluster's Ansible inventory into a typed model:
// hosts in the order they were written, their groups (kubeasz's names, with
// kubespray's accepted as aliases) and their effective variables.
//
// It owns the INI and YAML/JSON inventory formats, group_vars and host_vars,
// kubeasz's config.yml, the "{{ name }}" interpolation those files use, the
// layout of kubeasz's cluster dir (ClusterDir: every file ezrestore reads or
// writes for a cluster is named there), and errors that point at file:line.
//
// It reads the files it is given and nothing else: no SSH, no network. Every
// other package may import it; it imports no other ezrestore package but
// internal/shellwords, the one word splitter.
package inventory
