// The module the lab builds Kubernetes' control plane and kubectl in (see
// doc.go). It is not part of the main module: the lab copies it, pins one
// Kubernetes version and tidies the copy.
module github.com/ezrestore/ezrestore/lab/kubebuild

go 1.24
