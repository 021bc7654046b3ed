package snapshot

// A snapshot read as Kubernetes objects: `ezrestore snapshot get` and `ls`.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ezrestore/ezrestore/objects"
)

// GetObject reads the object ref names from the snapshot at path and decodes
// it with dec. An object the snapshot does not hold is an error naming the
// closest objects of the same resource it does hold.
func GetObject(path string, ref objects.Ref, dec *objects.Decoder) (*objects.Object, error) {
	kv, err := Get(path, ref.Key())
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, notHeld(path, ref)
	}
	o, err := dec.Decode(kv.Key, kv.Value, kv.ModRevision)
	if err != nil {
		return o, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}

// notHeld says that the snapshot does not hold ref, and what it holds nearby.
func notHeld(path string, ref objects.Ref) error {
	msg := fmt.Sprintf("%s: no %s (key %s) at the snapshot's revision", path, ref, ref.Key())
	held, err := Find(path, ref.Resource.KeyPrefix()+"*")
	if err != nil {
		return fmt.Errorf("%s", msg)
	}
	var names []string
	for _, m := range held {
		if r, err := objects.ParseKey(m.Key); err == nil {
			names = append(names, r.String())
		}
	}
	if near := objects.Closest(ref.String(), names, 5); len(near) > 0 {
		return fmt.Errorf("%s; closest it holds: %s", msg, strings.Join(near, ", "))
	}
	if len(names) == 0 {
		return fmt.Errorf("%s; it holds no %s at all", msg, ref.Resource.GroupResource())
	}
	return fmt.Errorf("%s; it holds %d other %s (`ezrestore snapshot ls %s %s` lists them)", msg, len(names), ref.Resource.GroupResource(), path, ref.Resource.GroupResource())
}

// ObjectEntry is one object a snapshot holds.
type ObjectEntry struct {
	Kind      string `json:"kind"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Key       string `json:"key"`
	// Created and Modified are the key's create and mod revisions.
	Created  int64 `json:"created"`
	Modified int64 `json:"modified"`
}

// ListObjects lists the objects live in the snapshot, of resource res (nil:
// every resource) and in namespace ns ("" : every namespace), sorted by
// resource, namespace and name. Keys outside /registry/ are not objects and
// are left out.
func ListObjects(path string, res *objects.Resource, ns string) ([]ObjectEntry, error) {
	pattern := "/registry/*"
	if res != nil {
		pattern = res.NamespacePrefix(ns) + "*"
	}
	matches, err := Find(path, pattern)
	if err != nil {
		return nil, err
	}
	out := []ObjectEntry{}
	for _, m := range matches {
		ref, err := objects.ParseKey(m.Key)
		if err != nil || ns != "" && ref.Namespace != ns {
			continue
		}
		kind := ref.Resource.Kind
		if kind == "" {
			kind = ref.Resource.GroupResource()
		}
		out = append(out, ObjectEntry{Kind: kind, Resource: ref.Resource.GroupResource(), Namespace: ref.Namespace, Name: ref.Name,
			Key: m.Key, Created: m.CreateRevision, Modified: m.ModRevision})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}
