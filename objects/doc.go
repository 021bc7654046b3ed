// Package objects reads Kubernetes objects as the kube-apiserver stores them
// in etcd: keys (/registry/<resource>/[<namespace>/]<name>, with the few
// irregular prefixes of built-in resources), the resource table that turns
// what an operator types (pod/default/web-0, deployment/web/front,
// namespace//team-a) into keys, values decoded with the Kubernetes project's
// own libraries (the `k8s\x00` protobuf envelope of built-in types, JSON for
// custom resources), and values encrypted at rest
// (k8s:enc:<provider>:v1:<key name>:), named and, given the apiserver's
// EncryptionConfiguration, decrypted.
//
// Nothing here talks to etcd or opens a snapshot: callers hand in keys,
// values and revisions (the snapshot package offline, an etcd client live).
// It imports no other package of the project.
package objects
