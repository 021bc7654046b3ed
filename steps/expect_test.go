package steps

import (
	"strings"
	"testing"
)

func TestParseExpectation(t *testing.T) {
	cases := []struct {
		in, key, path string
	}{
		{"pod/default/net-test3", "/registry/pods/default/net-test3", "/api/v1/namespaces/default/pods/net-test3"},
		{"po/kube-system/x.y", "/registry/pods/kube-system/x.y", "/api/v1/namespaces/kube-system/pods/x.y"},
		{"service/default/kubernetes", "/registry/services/specs/default/kubernetes", "/api/v1/namespaces/default/services/kubernetes"},
		{"Deployment/web/front", "/registry/deployments/web/front", "/apis/apps/v1/namespaces/web/deployments/front"},
		{"namespace/default", "/registry/namespaces/default", "/api/v1/namespaces/default"},
		{"ns//kube-system", "/registry/namespaces/kube-system", "/api/v1/namespaces/kube-system"},
		{"configmap/default/cfg", "/registry/configmaps/default/cfg", "/api/v1/namespaces/default/configmaps/cfg"},
	}
	for _, c := range cases {
		e, err := ParseExpectation(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if e.Key != c.key || e.Path != c.path {
			t.Errorf("%s: key %s path %s, want %s %s", c.in, e.Key, e.Path, c.key, c.path)
		}
	}
	for _, bad := range []string{"pod/net-test3", "pod/default/", "pod//x", "widget/default/x", "pod/default/a/b", "pod/default/../x", "pod/default/A", "namespace/a/b", "pod/default/x?watch=1"} {
		if e, err := ParseExpectation(bad); err == nil {
			t.Errorf("%s: accepted as %+v", bad, e)
		} else if !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: error does not quote the value: %v", bad, err)
		}
	}
}
