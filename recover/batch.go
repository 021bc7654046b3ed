package recover

import (
	"sort"
	"strings"
)

// batches packs the objects to write into transactions of at most size.
// Controllers act on each object as soon as it appears, so what must
// appear together goes into one transaction, all or nothing:
//   - a namespace with what the cluster makes by itself in a new namespace
//     (its kube-root-ca.crt ConfigMap, its default ServiceAccount): written
//     after the namespace, they are made anew first and the recover's
//     create-only puts of them are refused;
//   - each owner with what it owns, down the chain (a Deployment with its
//     ReplicaSets and their Pods): written apart, the owner's controller
//     would make new ones, or the garbage collector find an owner missing.
//
// The namespace comes first. A family larger than size is split, owners
// first.
func batches(todo []*Item, size int) [][]*Item {
	byUID := map[string]int{}
	for i, it := range todo {
		if it.UID != "" {
			byUID[it.UID] = i
		}
	}
	parent := make([]int, len(todo))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	for i, it := range todo {
		for _, o := range it.owners {
			if j, ok := byUID[o.uid]; ok {
				parent[find(i)] = find(j)
			}
		}
	}
	groups := map[int][]*Item{}
	for i, it := range todo {
		groups[find(i)] = append(groups[find(i)], it)
	}
	fams := make([][]*Item, 0, len(groups))
	for _, f := range groups {
		sort.Slice(f, func(i, j int) bool {
			if f[i].level != f[j].level {
				return f[i].level < f[j].level
			}
			return f[i].Key < f[j].Key
		})
		fams = append(fams, f)
	}
	rank := func(f []*Item) int {
		best := 2
		for _, it := range f {
			switch {
			case it.level < 0:
				return 0
			case madeWithNamespace(it.Key):
				best = 1
			}
		}
		return best
	}
	sort.Slice(fams, func(i, j int) bool {
		if ri, rj := rank(fams[i]), rank(fams[j]); ri != rj {
			return ri < rj
		}
		return fams[i][0].Key < fams[j][0].Key
	})
	var out [][]*Item
	var cur []*Item
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
	}
	for _, f := range fams {
		if len(cur)+len(f) > size {
			flush()
		}
		for len(f) > size {
			out = append(out, f[:size])
			f = f[size:]
		}
		cur = append(cur, f...)
	}
	flush()
	return out
}

// madeWithNamespace is true for the objects the controller manager makes
// in every new namespace.
func madeWithNamespace(key string) bool {
	return strings.HasPrefix(key, "/registry/configmaps/") && strings.HasSuffix(key, "/kube-root-ca.crt") ||
		strings.HasPrefix(key, "/registry/serviceaccounts/") && strings.HasSuffix(key, "/default")
}
