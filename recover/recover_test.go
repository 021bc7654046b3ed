package recover

import (
	"strings"
	"testing"
)

func TestWanted(t *testing.T) {
	keys, in, err := wanted([]string{"pod/default/web-0", "deployment.apps/web/front", "namespace//team-a"}, "team-b")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"/registry/pods/default/web-0", "/registry/deployments/web/front", "/registry/namespaces/team-a", "/registry/namespaces/team-b"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("key %s not wanted: %v", k, keys)
		}
	}
	for k, want := range map[string]bool{
		"/registry/configmaps/team-b/cfg":     true,
		"/registry/services/specs/team-b/web": true,
		"/registry/configmaps/team-bb/cfg":    false,
		"/registry/namespaces/team-b":         false, // named in keys, not by the namespace filter
		"/registry/clusterroles/team-b":       false,
		"/registry/pods/default/team-b":       false,
	} {
		if got := in([]byte(k)); got != want {
			t.Errorf("in namespace team-b: %s: %v, want %v", k, got, want)
		}
	}
	for _, bad := range []struct {
		refs []string
		ns   string
		want string
	}{
		{[]string{"pod/web-0"}, "", "pods are namespaced"},
		{[]string{"nosuchthing/a/b"}, "", `unknown resource "nosuchthing"`},
		{[]string{"a/b/c/d"}, "", "write RESOURCE/NAMESPACE/NAME"},
		{nil, "Team_A", `--namespace "Team_A": not a namespace name`},
		{nil, "-a", "not a namespace name"},
	} {
		if _, _, err := wanted(bad.refs, bad.ns); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("wanted(%v, %q): %v; want %q", bad.refs, bad.ns, err, bad.want)
		}
	}
}

func TestOrderByOwners(t *testing.T) {
	ns := &Item{Key: "/registry/namespaces/a", level: -1}
	dep := &Item{Key: "/registry/deployments/a/web", UID: "d"}
	rs := &Item{Key: "/registry/replicasets/a/web-1", UID: "r", owners: []ownerRef{{uid: "d"}}}
	pod := &Item{Key: "/registry/pods/a/web-1-x", UID: "p", owners: []ownerRef{{uid: "r"}, {uid: "gone"}}}
	items := []*Item{pod, rs, ns, dep}
	orderByOwners(items, map[string]*Item{"d": dep, "r": rs, "p": pod})
	if ns.level != -1 || dep.level != 0 || rs.level != 1 || pod.level != 2 {
		t.Fatalf("levels: namespace %d, deployment %d, replicaset %d, pod %d", ns.level, dep.level, rs.level, pod.level)
	}
	// A cycle (never made by Kubernetes) ends, it does not loop.
	a := &Item{UID: "a", owners: []ownerRef{{uid: "b"}}}
	b := &Item{UID: "b", owners: []ownerRef{{uid: "a"}}}
	orderByOwners([]*Item{a, b}, map[string]*Item{"a": a, "b": b})
}

func TestBatches(t *testing.T) {
	it := func(key, uid string, level int, owners ...string) *Item {
		i := &Item{Key: key, UID: uid, level: level}
		for _, o := range owners {
			i.owners = append(i.owners, ownerRef{uid: o})
		}
		return i
	}
	ns := it("/registry/namespaces/a", "ns", -1)
	root := it("/registry/configmaps/a/kube-root-ca.crt", "ca", 0)
	sa := it("/registry/serviceaccounts/a/default", "sa", 0)
	dep := it("/registry/deployments/a/web", "d", 0)
	rs := it("/registry/replicasets/a/web-1", "r", 1, "d")
	pod1 := it("/registry/pods/a/web-1-x", "p1", 2, "r")
	pod2 := it("/registry/pods/a/web-1-y", "p2", 2, "r")
	cms := []*Item{it("/registry/configmaps/a/c1", "c1", 0), it("/registry/configmaps/a/c2", "c2", 0), it("/registry/configmaps/a/c3", "c3", 0)}
	todo := append([]*Item{pod2, cms[0], pod1, rs, cms[1], dep, sa, cms[2], root}, ns)
	keys := func(b []*Item) string {
		var k []string
		for _, i := range b {
			k = append(k, strings.TrimPrefix(i.Key, "/registry/"))
		}
		return strings.Join(k, " ")
	}
	var got []string
	for _, b := range batches(todo, 4) {
		got = append(got, keys(b))
	}
	want := []string{
		// the namespace with what the cluster makes in it, then the next family that fits
		"namespaces/a configmaps/a/kube-root-ca.crt serviceaccounts/a/default configmaps/a/c1",
		"configmaps/a/c2 configmaps/a/c3",
		// a family together, owners first
		"deployments/a/web replicasets/a/web-1 pods/a/web-1-x pods/a/web-1-y",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("batches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A family larger than a batch is split, owners first.
	got = nil
	for _, b := range batches([]*Item{pod2, rs, pod1, dep}, 3) {
		got = append(got, keys(b))
	}
	if strings.Join(got, "|") != "deployments/a/web replicasets/a/web-1 pods/a/web-1-x|pods/a/web-1-y" {
		t.Fatalf("split family: %v", got)
	}
}
