// Package diff says what a restore would undo: the objects created, deleted
// and modified between two states of an etcd store (a snapshot and the live
// cluster, or two snapshots). Keys and their create/mod revisions tell those
// apart without reading a value: a key only on the later side was created, a
// key only on the earlier side deleted, a key on both with another mod
// revision modified (with another create revision, deleted and created again:
// a new object under the old name).
//
// Its sources are a snapshot file (package snapshot) and a live etcd through
// any client (Etcd); it imports only objects, snapshot and fanout of the project, so
// the commands that open clusters (restore) hand it a connected client.
package diff

import (
	"sort"
	"strings"

	"github.com/ezrestore/ezrestore/objects"
)

// Entry is a live key and its revisions.
type Entry struct {
	Key    string `json:"key"`
	Create int64  `json:"create_revision"`
	Mod    int64  `json:"mod_revision"`
}

// Side is one state of the store: the keys live at Revision, sorted by key.
type Side struct {
	Name     string  `json:"name"`
	Revision int64   `json:"revision"`
	Keys     []Entry `json:"-"`
}

// Change is one object that differs.
type Change struct {
	// Resource is the group resource (pods, deployments.apps); "" for a key
	// outside /registry/ or one that names no object, shown by Key alone.
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Key       string `json:"key"`
	// Before and After are the key's revisions on each side, nil where it is absent.
	Before *Entry `json:"before,omitempty"`
	After  *Entry `json:"after,omitempty"`
	// Recreated: deleted and created again in between, so another object
	// (another uid) under the same name.
	Recreated bool `json:"recreated,omitempty"`
}

// Ref is how an operator names the object back (pods/default/web-0), or the raw key.
func (c Change) Ref() string {
	if c.Resource == "" {
		return c.Key
	}
	return c.Resource + "/" + c.Namespace + "/" + c.Name
}

// Counts are changes by kind.
type Counts struct {
	Created  int `json:"created"`
	Deleted  int `json:"deleted"`
	Modified int `json:"modified"`
}

func (c Counts) Total() int { return c.Created + c.Deleted + c.Modified }

func (c *Counts) add(o Counts) {
	c.Created += o.Created
	c.Deleted += o.Deleted
	c.Modified += o.Modified
}

// Group counts the changes of one resource in one namespace.
type Group struct {
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Counts
}

// Result is what changed from From to To.
type Result struct {
	From Side `json:"from"`
	To   Side `json:"to"`
	// Total counts the listed changes (events and leases aside).
	Total Counts `json:"total"`
	// Groups count them per resource and namespace, most changes first.
	Groups []Group `json:"groups"`
	// Apart counts the churn of events and leases, which every cluster
	// rewrites all the time and a restore undoes harmlessly: not listed.
	Apart map[string]Counts `json:"apart"`
	// The listed changes, sorted by resource, namespace, name.
	Created  []Change `json:"created"`
	Deleted  []Change `json:"deleted"`
	Modified []Change `json:"modified"`
}

// apartClass says whether a resource's changes are counted apart, and under which name.
func apartClass(resource string) string {
	switch resource {
	case "events", "events.k8s.io":
		return "events"
	case "leases.coordination.k8s.io", "leasecandidates.coordination.k8s.io", "masterleases":
		return "leases"
	}
	return ""
}

// Compare lists what changed from `from` to `to` (both sorted by key).
func Compare(from, to Side) *Result {
	r := &Result{From: from, To: to, Apart: map[string]Counts{"events": {}, "leases": {}},
		Created: []Change{}, Deleted: []Change{}, Modified: []Change{}}
	groups := map[Group]*Counts{}
	record := func(before, after *Entry) {
		key := ""
		if before != nil {
			key = before.Key
		} else {
			key = after.Key
		}
		c := Change{Key: key, Name: key, Before: before, After: after}
		if ref, err := objects.ParseKey(key); err == nil {
			c.Resource, c.Namespace, c.Name = ref.Resource.GroupResource(), ref.Namespace, ref.Name
		}
		var n Counts
		switch {
		case before == nil:
			n.Created = 1
		case after == nil:
			n.Deleted = 1
		default:
			n.Modified = 1
			c.Recreated = before.Create != after.Create
		}
		if class := apartClass(c.Resource); class != "" {
			a := r.Apart[class]
			a.add(n)
			r.Apart[class] = a
			return
		}
		r.Total.add(n)
		g := Group{Resource: c.Resource, Namespace: c.Namespace}
		if groups[g] == nil {
			groups[g] = &Counts{}
		}
		groups[g].add(n)
		switch {
		case n.Created == 1:
			r.Created = append(r.Created, c)
		case n.Deleted == 1:
			r.Deleted = append(r.Deleted, c)
		default:
			r.Modified = append(r.Modified, c)
		}
	}
	a, b := from.Keys, to.Keys
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Key < b[j].Key:
			record(&a[i], nil)
			i++
		case i == len(a) || b[j].Key < a[i].Key:
			record(nil, &b[j])
			j++
		default:
			if a[i].Mod != b[j].Mod || a[i].Create != b[j].Create {
				record(&a[i], &b[j])
			}
			i++
			j++
		}
	}
	for g, c := range groups {
		g.Counts = *c
		r.Groups = append(r.Groups, g)
	}
	sort.Slice(r.Groups, func(i, j int) bool {
		x, y := r.Groups[i], r.Groups[j]
		if x.Total() != y.Total() {
			return x.Total() > y.Total()
		}
		if x.Resource != y.Resource {
			return x.Resource < y.Resource
		}
		return x.Namespace < y.Namespace
	})
	for _, l := range [][]Change{r.Created, r.Deleted, r.Modified} {
		sort.Slice(l, func(i, j int) bool { return less(l[i], l[j]) })
	}
	return r
}

func less(x, y Change) bool {
	if x.Resource != y.Resource {
		return x.Resource < y.Resource
	}
	if x.Namespace != y.Namespace {
		return x.Namespace < y.Namespace
	}
	return strings.Compare(x.Name, y.Name) < 0
}
