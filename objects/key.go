package objects

import (
	"fmt"
	"strings"
)

// Ref names one stored object: its resource, namespace ("" when cluster
// scoped) and name.
type Ref struct {
	Resource  *Resource
	Namespace string
	Name      string
}

// Key is the object's etcd key.
func (r Ref) Key() string {
	if r.Namespace == "" {
		return r.Resource.KeyPrefix() + r.Name
	}
	return r.Resource.KeyPrefix() + r.Namespace + "/" + r.Name
}

// String is the form an operator types back: pods/default/web-0,
// namespaces//team-a, deployments.apps/web/front.
func (r Ref) String() string {
	return r.Resource.GroupResource() + "/" + r.Namespace + "/" + r.Name
}

// ParseKey reads an etcd key the apiserver wrote. Keys of built-in resources
// are matched against the table (so /registry/services/specs/default/x is a
// service, /registry/minions/n1 a node); a key whose first segment holds a
// dot is a custom or aggregated resource, /registry/<group>/<plural>/...;
// any other key under /registry/ is a resource missing from the table
// (Known false). The scope of a resource not in the table comes from the
// key: two segments after the prefix are namespace and name.
func ParseKey(key string) (Ref, error) {
	if !strings.HasPrefix(key, registry) {
		return Ref{}, fmt.Errorf("key %q is not a Kubernetes object key (it does not start with %s)", key, registry)
	}
	rest := key[len(registry):]
	// The longest built-in prefix wins: services/specs before a resource named services.
	for _, depth := range []int{2, 1} {
		parts := strings.SplitN(rest, "/", depth+1)
		if len(parts) != depth+1 {
			continue
		}
		r, ok := byPrefix[strings.Join(parts[:depth], "/")]
		if !ok {
			continue
		}
		return refIn(r, parts[depth], key)
	}
	parts := strings.SplitN(rest, "/", 2)
	if len(parts) != 2 || parts[0] == "" {
		return Ref{}, fmt.Errorf("key %q names no object (expected %s<resource>/[<namespace>/]<name>)", key, registry)
	}
	r := &Resource{Name: parts[0], Prefix: parts[0]}
	tail := parts[1]
	if strings.Contains(parts[0], ".") { // <group>/<plural>/...
		p := strings.SplitN(parts[1], "/", 2)
		if len(p) != 2 || p[0] == "" {
			return Ref{}, fmt.Errorf("key %q names no object (expected %s<group>/<resource>/[<namespace>/]<name>)", key, registry)
		}
		r = &Resource{Name: p[0], Group: parts[0], Prefix: parts[0] + "/" + p[0]}
		tail = p[1]
	}
	r.Namespaced = strings.Contains(tail, "/")
	return refIn(r, tail, key)
}

// refIn splits what follows a resource's prefix into namespace and name.
func refIn(r *Resource, tail, key string) (Ref, error) {
	ns, name, namespaced := strings.Cut(tail, "/")
	if !namespaced {
		ns, name = "", tail
	}
	if name == "" || strings.Contains(name, "/") || namespaced && ns == "" {
		return Ref{}, fmt.Errorf("key %q: %q is not [<namespace>/]<name> under %s", key, tail, r.KeyPrefix())
	}
	if r.Known && namespaced != r.Namespaced {
		scope := "cluster scoped"
		if r.Namespaced {
			scope = "namespaced"
		}
		return Ref{}, fmt.Errorf("key %q: %s are %s, the key says otherwise", key, r.GroupResource(), scope)
	}
	return Ref{Resource: r, Namespace: ns, Name: name}, nil
}

// ParseRef reads an object reference as an operator types it:
//
//	pod/default/net-test3        RESOURCE/NAMESPACE/NAME
//	deployment.apps/web/front    the resource may carry its group
//	namespace//team-a            cluster scoped: an empty namespace
//	namespace/team-a             cluster scoped, short form
//	widgets.example.com/ns/w1    a custom resource: plural.group
//	/registry/pods/default/x     a raw etcd key
func ParseRef(s string) (Ref, error) {
	if strings.HasPrefix(s, "/") {
		return ParseKey(s)
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Ref{}, fmt.Errorf("object %q: write RESOURCE/NAMESPACE/NAME (pod/default/web-0), RESOURCE//NAME or RESOURCE/NAME for a cluster-scoped one (namespace//team-a), or a raw key such as /registry/pods/default/web-0", s)
	}
	r, err := Lookup(parts[0])
	if err != nil {
		return Ref{}, fmt.Errorf("object %q: %w", s, err)
	}
	ns, name := "", parts[len(parts)-1]
	if len(parts) == 3 {
		ns = parts[1]
	}
	if name == "" {
		return Ref{}, fmt.Errorf("object %q: no name after the last '/'", s)
	}
	if !r.Known { // a custom resource: its scope is what the reference says
		c := *r
		c.Namespaced = ns != ""
		r = &c
	}
	switch {
	case r.Namespaced && ns == "":
		return Ref{}, fmt.Errorf("object %q: %s are namespaced: write %s/NAMESPACE/%s", s, r.GroupResource(), parts[0], name)
	case !r.Namespaced && ns != "":
		return Ref{}, fmt.Errorf("object %q: %s are cluster scoped, they have no namespace: write %s//%s", s, r.GroupResource(), parts[0], name)
	}
	return Ref{Resource: r, Namespace: ns, Name: name}, nil
}
