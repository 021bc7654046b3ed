// Package etcdbuild is the module in which the ezrestore lab builds etcd,
// etcdctl and etcdutl of one etcd release from the Go module proxy, because
// `go install go.etcd.io/etcd/...@version` refuses modules with replace
// directives. The lab (lab/etcd.go) copies this module to a scratch dir, adds
// requirements on go.etcd.io/etcd/{server,etcdctl,etcdutl}/v3 at the chosen
// version, copies the upstream `package main` of etcdctl and etcdutl into
// etcdctl/ and etcdutl/ (their commands are assembled in package main, so
// they cannot be imported), runs `go mod tidy` and builds the three
// binaries. The lab embeds the files of this directory; a test in package
// lab keeps the two in step.
package etcdbuild
