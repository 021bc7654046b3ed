package diff

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
	"github.com/ezrestore/ezrestore/objects"
)

func TestCompare(t *testing.T) {
	from := Side{Name: "a", Revision: 10, Keys: []Entry{
		{"/registry/events/default/e1", 2, 2},
		{"/registry/leases/kube-node-lease/n1", 3, 3},
		{"/registry/namespaces/gone", 4, 4},
		{"/registry/pods/default/edited", 5, 5},
		{"/registry/pods/default/recreated", 6, 6},
		{"/registry/pods/default/same", 7, 7},
	}}
	to := Side{Name: "b", Revision: 20, Keys: []Entry{
		{"/registry/events/default/e2", 12, 12},
		{"/registry/leases/kube-node-lease/n1", 3, 15},
		{"/registry/pods/default/edited", 5, 14},
		{"/registry/pods/default/new", 11, 11},
		{"/registry/pods/default/recreated", 13, 13},
		{"/registry/pods/default/same", 7, 7},
		{"/unrelated", 16, 16},
	}}
	r := Compare(from, to)
	refs := func(l []Change) string {
		var s []string
		for _, c := range l {
			s = append(s, c.Ref())
		}
		return strings.Join(s, " ")
	}
	if got := refs(r.Created); got != "/unrelated pods/default/new" {
		t.Errorf("created: %s", got)
	}
	if got := refs(r.Deleted); got != "namespaces//gone" {
		t.Errorf("deleted: %s", got)
	}
	if got := refs(r.Modified); got != "pods/default/edited pods/default/recreated" || r.Modified[0].Recreated || !r.Modified[1].Recreated {
		t.Errorf("modified: %s %+v", got, r.Modified)
	}
	if r.Total != (Counts{2, 1, 2}) || r.Apart["events"] != (Counts{1, 1, 0}) || r.Apart["leases"] != (Counts{0, 0, 1}) {
		t.Errorf("counts: total %+v apart %+v", r.Total, r.Apart)
	}
	if len(r.Groups) != 3 || r.Groups[0] != (Group{"pods", "default", Counts{1, 0, 2}}) {
		t.Errorf("groups: %+v", r.Groups)
	}
	var out strings.Builder
	r.WriteText(&out, 1)
	for _, want := range []string{"2 objects created since", "1 object deleted since", "events 1 created, 1 deleted", "(not an object key)", "... and 1 more"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	r.WriteText(&out, -1)
	if !strings.Contains(out.String(), "pods/default/recreated  (deleted and created again") || strings.Contains(out.String(), "more") {
		t.Errorf("all names:\n%s", out.String())
	}
}

func TestUnified(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n"
	got := Unified("x", "y", a, b, 1)
	want := "--- x\n+++ y\n@@ -3,3 +3,3 @@\n c\n-d\n+D\n e\n@@ -10,1 +10,2 @@\n j\n+k\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if Unified("x", "y", a, a, 3) != "" {
		t.Error("equal texts differ")
	}
	if got := Unified("x", "y", "", "a\n", 3); got != "--- x\n+++ y\n@@ -1,0 +1,1 @@\n+a\n" {
		t.Errorf("added whole:\n%s", got)
	}
}

// Two real snapshots of an etcd holding objects encoded as the apiserver
// encodes them: the diff names exactly what the test changed in between.
func TestSnapshots(t *testing.T) {
	if _, _, err := etcdtest.Binaries(); err != nil {
		if os.Getenv("EZRESTORE_E2E") == "1" {
			t.Fatalf("EZRESTORE_E2E=1 but %v", err)
		}
		t.Skipf("needs a real etcd: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srv, err := etcdtest.Start(ctx, filepath.Join(dir, "etcd"), etcdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	scheme := runtime.NewScheme()
	corev1.AddToScheme(scheme)
	ser := protobuf.NewSerializer(scheme, scheme)
	put := func(obj runtime.Object, key string) {
		t.Helper()
		var b bytes.Buffer
		if err := ser.Encode(obj, &b); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Put(ctx, key, b.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name, image, uid string) *corev1.Pod {
		return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	}
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "team-a", UID: "ns-uid"}}
	put(ns, "/registry/namespaces/team-a")
	put(pod("keep", "busybox", "u1"), "/registry/pods/default/keep")
	put(pod("edit", "busybox", "u2"), "/registry/pods/default/edit")
	put(pod("gone", "busybox", "u3"), "/registry/pods/default/gone")
	before := filepath.Join(dir, "before.db")
	if err := srv.SnapshotSave(ctx, before); err != nil {
		t.Fatal(err)
	}
	put(pod("edit", "nginx", "u2"), "/registry/pods/default/edit")
	srv.Delete(ctx, "/registry/pods/default/gone")
	srv.Delete(ctx, "/registry/namespaces/team-a")
	put(pod("new", "busybox", "u4"), "/registry/pods/default/new")
	srv.Put(ctx, "/registry/events/default/new.1", []byte("event"))
	after := filepath.Join(dir, "after.db")
	if err := srv.SnapshotSave(ctx, after); err != nil {
		t.Fatal(err)
	}

	from, to := SnapshotFile{Path: before}, SnapshotFile{Path: after}
	r, err := Sources(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	got := func(l []Change) string {
		var s []string
		for _, c := range l {
			s = append(s, c.Ref())
		}
		return strings.Join(s, " ")
	}
	if c, d, m := got(r.Created), got(r.Deleted), got(r.Modified); c != "pods/default/new" || d != "namespaces//team-a pods/default/gone" || m != "pods/default/edit" {
		t.Errorf("created %q deleted %q modified %q", c, d, m)
	}
	if r.Apart["events"].Created != 1 || r.From.Revision >= r.To.Revision {
		t.Errorf("apart %+v, revisions %d -> %d", r.Apart, r.From.Revision, r.To.Revision)
	}

	ref, _ := objects.ParseRef("pod/default/edit")
	d, err := Object(ctx, from, to, ref, &objects.Decoder{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d, "-  - image: busybox") || !strings.Contains(d, "+  - image: nginx") {
		t.Errorf("object diff:\n%s", d)
	}
	ref, _ = objects.ParseRef("pod/default/never")
	if _, err := Object(ctx, from, to, ref, &objects.Decoder{}); err == nil || !strings.Contains(err.Error(), "in neither") {
		t.Errorf("absent object: %v", err)
	}
}

// The live side, on a real etcd: every key listed in pages at one revision
// (keys written after the first page do not show), values read one by one.
func TestEtcdSource(t *testing.T) {
	if _, _, err := etcdtest.Binaries(); err != nil {
		if os.Getenv("EZRESTORE_E2E") == "1" {
			t.Fatalf("EZRESTORE_E2E=1 but %v", err)
		}
		t.Skipf("needs a real etcd: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := etcdtest.Start(ctx, filepath.Join(t.TempDir(), "etcd"), etcdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	var want []string
	for _, k := range []string{"/registry/pods/default/a", "/registry/pods/default/b", "/registry/pods/default/c", "/registry/services/specs/default/k", "/x"} {
		srv.Put(ctx, k, []byte("v"))
		want = append(want, k)
	}
	create, _ := srv.Put(ctx, "/registry/pods/default/a", []byte("v2"))
	srv.Put(ctx, "/registry/pods/default/gone", []byte("v"))
	rev, _ := srv.Delete(ctx, "/registry/pods/default/gone")
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.ClientURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	defer func(n int64) { pageSize = n }(pageSize)
	pageSize = 2
	// A key written while the pages are read belongs to a later revision.
	kv := &writingKV{KV: cli, put: func() { srv.Put(ctx, "/registry/pods/default/b2", []byte("late")) }}
	side, err := Etcd{KV: kv, Label: "live"}.Side(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range side.Keys {
		got = append(got, e.Key)
	}
	if side.Revision != rev || strings.Join(got, " ") != strings.Join(want, " ") || kv.pages != 3 {
		t.Fatalf("revision %d (want %d), %d pages, keys %v", side.Revision, rev, kv.pages, got)
	}
	if side.Keys[0].Mod != create || side.Keys[0].Create == create {
		t.Errorf("revisions of a: %+v (modified at %d)", side.Keys[0], create)
	}
	v, err := Etcd{KV: cli}.Get(ctx, "/registry/pods/default/a")
	if err != nil || string(v.Value) != "v2" || v.ModRevision != create {
		t.Errorf("get a: %+v %v", v, err)
	}
	if v, err := (Etcd{KV: cli}).Get(ctx, "/registry/pods/default/gone"); err != nil || v != nil {
		t.Errorf("get a deleted key: %+v %v", v, err)
	}
}

// writingKV writes a key after the first page is read.
type writingKV struct {
	clientv3.KV
	put   func()
	pages int
}

func (w *writingKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	r, err := w.KV.Get(ctx, key, opts...)
	if w.pages++; w.pages == 1 {
		w.put()
	}
	return r, err
}
