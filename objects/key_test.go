package objects

import (
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key, res, ns, name string
	}{
		{"/registry/pods/default/net-test3", "pods", "default", "net-test3"},
		{"/registry/namespaces/team-a", "namespaces", "", "team-a"},
		{"/registry/services/specs/default/kubernetes", "services", "default", "kubernetes"},
		{"/registry/services/endpoints/default/kubernetes", "endpoints", "default", "kubernetes"},
		{"/registry/minions/node-1", "nodes", "", "node-1"},
		{"/registry/controllers/web/rc1", "replicationcontrollers", "web", "rc1"},
		{"/registry/ingress/web/front", "ingresses.networking.k8s.io", "web", "front"},
		{"/registry/deployments/web/front", "deployments.apps", "web", "front"},
		{"/registry/clusterroles/admin", "clusterroles.rbac.authorization.k8s.io", "", "admin"},
		{"/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com", "customresourcedefinitions.apiextensions.k8s.io", "", "widgets.example.com"},
		{"/registry/apiregistration.k8s.io/apiservices/v1.apps", "apiservices.apiregistration.k8s.io", "", "v1.apps"},
		{"/registry/example.com/widgets/team-a/w1", "widgets.example.com", "team-a", "w1"},
		{"/registry/example.com/clusterwidgets/cw1", "clusterwidgets.example.com", "", "cw1"},
		{"/registry/masterleases/10.0.0.1", "masterleases", "", "10.0.0.1"},
	} {
		ref, err := ParseKey(tc.key)
		if err != nil {
			t.Errorf("ParseKey(%q): %v", tc.key, err)
			continue
		}
		if got := ref.Resource.GroupResource(); got != tc.res || ref.Namespace != tc.ns || ref.Name != tc.name {
			t.Errorf("ParseKey(%q) = %s %q %q, want %s %q %q", tc.key, got, ref.Namespace, ref.Name, tc.res, tc.ns, tc.name)
		}
		if back := ref.Key(); back != tc.key {
			t.Errorf("ParseKey(%q).Key() = %q", tc.key, back)
		}
	}
	for _, bad := range []string{"/other/x", "/registry/", "/registry/pods", "/registry/pods/default", "/registry/pods/a/b/c", "/registry/namespaces/a/b", "/registry/example.com/widgets"} {
		if ref, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) = %v, want an error", bad, ref)
		}
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in, key string
	}{
		{"pod/default/net-test3", "/registry/pods/default/net-test3"},
		{"pods/default/net-test3", "/registry/pods/default/net-test3"},
		{"po/default/net-test3", "/registry/pods/default/net-test3"},
		{"Pod/default/net-test3", "/registry/pods/default/net-test3"},
		{"deployment/web/front", "/registry/deployments/web/front"},
		{"deployments.apps/web/front", "/registry/deployments/web/front"},
		{"svc/default/kubernetes", "/registry/services/specs/default/kubernetes"},
		{"ep/default/kubernetes", "/registry/services/endpoints/default/kubernetes"},
		{"namespace//team-a", "/registry/namespaces/team-a"},
		{"ns/team-a", "/registry/namespaces/team-a"},
		{"node/n1", "/registry/minions/n1"},
		{"ingress/web/front", "/registry/ingress/web/front"},
		{"crd//widgets.example.com", "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com"},
		{"widgets.example.com/team-a/w1", "/registry/example.com/widgets/team-a/w1"},
		{"clusterwidgets.example.com//cw1", "/registry/example.com/clusterwidgets/cw1"},
		{"/registry/pods/default/x", "/registry/pods/default/x"},
	} {
		ref, err := ParseRef(tc.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tc.in, err)
			continue
		}
		if got := ref.Key(); got != tc.key {
			t.Errorf("ParseRef(%q).Key() = %q, want %q", tc.in, got, tc.key)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"pdo/default/x", `unknown resource "pdo" (did you mean`},
		{"pod/x", "pods are namespaced: write pod/NAMESPACE/x"},
		{"pod//x", "pods are namespaced"},
		{"namespace/default/x", "cluster scoped"},
		{"pod/default/", "no name"},
		{"pod", "write RESOURCE/NAMESPACE/NAME"},
		{"a/b/c/d", "write RESOURCE/NAMESPACE/NAME"},
		{"/etc/passwd", "not a Kubernetes object key"},
	} {
		_, err := ParseRef(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRef(%q) error = %v, want it to say %q", tc.in, err, tc.want)
		}
	}
}

func TestLookupSuggests(t *testing.T) {
	_, err := Lookup("deploymnet")
	if err == nil || !strings.Contains(err.Error(), "deployment") {
		t.Fatalf("Lookup(deploymnet) = %v, want a suggestion of deployment", err)
	}
}

func TestClosest(t *testing.T) {
	got := Closest("net-tset3", []string{"net-test3", "net-test1", "web-0", "kube-dns"}, 2)
	if len(got) == 0 || got[0] != "net-test3" {
		t.Fatalf("Closest = %v, want net-test3 first", got)
	}
}
