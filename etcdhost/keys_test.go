package etcdhost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
	"github.com/ezrestore/ezrestore/internal/testkit/localconn"
	"github.com/ezrestore/ezrestore/inventory"
)

// The commands diff sends a member, run by a real etcdctl against a real etcd.
func TestReadKeys(t *testing.T) {
	_, etcdctl, err := etcdtest.Binaries()
	if err != nil {
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
	srv.Put(ctx, "/registry/pods/default/b", []byte("k8s\x00\x01binary"))
	create, _ := srv.Put(ctx, "/registry/pods/default/a", []byte("v1"))
	mod, _ := srv.Put(ctx, "/registry/pods/default/a", []byte("v2"))
	srv.Put(ctx, "/registry/pods/default/c", []byte("v"))
	last, _ := srv.Delete(ctx, "/registry/pods/default/c")

	conn := localconn.Conn{H: &inventory.Host{Name: "local"}}
	c := EtcdClient{Etcdctl: etcdctl, Endpoint: srv.ClientURL}
	rev, keys, err := ReadKeys(ctx, conn, c)
	if err != nil {
		t.Fatal(err)
	}
	if rev != last || len(keys) != 2 || keys[0] != (KeyRevisions{"/registry/pods/default/a", create, mod}) || keys[1].Key != "/registry/pods/default/b" {
		t.Fatalf("revision %d (want %d), keys %+v", rev, last, keys)
	}
	v, err := ReadValue(ctx, conn, c, "/registry/pods/default/b")
	if err != nil || v == nil || string(v.Value) != "k8s\x00\x01binary" {
		t.Fatalf("value of b: %+v %v", v, err)
	}
	if v, err := ReadValue(ctx, conn, c, "/registry/pods/default/c"); err != nil || v != nil {
		t.Fatalf("deleted key: %+v %v", v, err)
	}
	if r, err := Probe(ctx, conn, c); err != nil || r != last {
		t.Fatalf("probe: %d %v", r, err)
	}
	// A member that does not answer fails the probe within its few seconds
	// (the listing, bounded to minutes for big stores, is never asked of it).
	srv.Stop()
	if _, err := Probe(ctx, conn, c); err == nil || !strings.Contains(err.Error(), "etcdctl get:") {
		t.Fatalf("stopped etcd: %v", err)
	}
}
