// Package kubebuild is the module in which the ezrestore lab builds
// kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of one
// Kubernetes release from the Go module proxy. k8s.io/kubernetes cannot be
// installed with `go install module@version`: its go.mod replaces every
// k8s.io staging module with a directory of its own repository. The lab
// (lab/kube.go) copies this module to a scratch dir, requires
// k8s.io/kubernetes at the pinned version, replaces each staging module that
// go.mod lists with its published v0.Y.Z, tidies, and builds kube/ once: one
// binary that runs the command its name (argv[0]) names, so the four share
// one compile, one link, one file on disk and one copy in the page cache.
// The version is stamped into k8s.io/component-base/version with -ldflags -X.
// The lab embeds the files of this directory; a test in package lab keeps
// the two in step.
package kubebuild
