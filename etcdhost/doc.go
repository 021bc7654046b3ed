// Package etcdhost is etcd on a host, read over SSH: the member's unit and
// config (unit file, EnvironmentFile, --config-file), its tools and their
// versions, its certificates, its own view of the cluster (the one etcdctl
// command line and status reader, the leader, the health verdict), the free
// space and what earlier runs left, and the staging paths a restore uses.
//
// It changes nothing on a host: the restore's actions (package steps) and
// the commands (restore, backup, status) read hosts through it and decide.
// It reaches hosts only through package transport (a Hosts gives one
// connection per host) and works on many at once only through fanout; it
// imports neither the engine nor any command.
package etcdhost
