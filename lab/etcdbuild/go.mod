// The module the lab builds etcd 3.5+ in (see doc.go). It is not part of the
// main module: the lab copies it, pins one etcd version and tidies the copy.
module github.com/ezrestore/ezrestore/lab/etcdbuild

go 1.24
