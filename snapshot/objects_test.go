package snapshot

import (
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/objects"
)

func TestListObjects(t *testing.T) {
	f := needFixtures(t)
	pods, _ := objects.Lookup("po")
	list, err := ListObjects(f.after, pods, "default")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Kind+" "+e.Namespace+"/"+e.Name)
	}
	// net-test3 was deleted before the second snapshot; kube-system's pod is in another namespace.
	if got := strings.Join(names, ", "); got != "Pod default/net-test1, Pod default/net-test2" {
		t.Fatalf("pods in default: %s", got)
	}
	if list[0].Created != f.createNetTest1 || list[0].Modified != f.modNetTest1 {
		t.Errorf("net-test1 revisions: %+v", list[0])
	}
	all, err := ListObjects(f.before, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range all {
		kinds = append(kinds, e.Kind)
	}
	// Keys outside /registry/ are not objects; a custom resource shows its resource.
	for _, want := range []string{"CustomResourceDefinition", "crontabs.stable.example.com", "Endpoints", "Namespace", "Service"} {
		if !strings.Contains(strings.Join(kinds, " "), want) {
			t.Errorf("all objects lack %s: %v", want, kinds)
		}
	}
	for _, e := range all {
		if !strings.HasPrefix(e.Key, "/registry/") {
			t.Errorf("listed a key that is no object: %s", e.Key)
		}
	}
}

func TestGetObjectNotHeld(t *testing.T) {
	f := needFixtures(t)
	ref, _ := objects.ParseRef("pod/default/net-test3")
	_, err := GetObject(f.after, ref, &objects.Decoder{})
	if err == nil || !strings.Contains(err.Error(), "no pods/default/net-test3") || !strings.Contains(err.Error(), "closest it holds: pods/default/net-test1, pods/default/net-test2") {
		t.Fatalf("deleted pod: %v", err)
	}
	ref, _ = objects.ParseRef("deploy/web/front")
	if _, err := GetObject(f.after, ref, &objects.Decoder{}); err == nil || !strings.Contains(err.Error(), "it holds no deployments.apps at all") {
		t.Fatalf("a resource the snapshot lacks: %v", err)
	}
}
