package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
)

// fixtures are snapshots written by a real etcd, made once per test process.
type fixtures struct {
	dir string
	// before has /registry/pods/default/net-test3; after was saved once it was deleted.
	before, after string
	// noTrailer is the member's own member/snap/db, copied after etcd stopped.
	noTrailer string
	// Revisions seen while writing.
	revBefore, revAfter, compactRev int64
	// createNetTest1/modNetTest1 are net-test1's create and latest mod revision.
	createNetTest1, modNetTest1 int64
	createNetTest3              int64
}

var (
	fixOnce sync.Once
	fix     *fixtures
	fixErr  error
	fixDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// needFixtures makes the real-etcd snapshots or skips the test: they run
// whenever etcd is installed, and must run under EZRESTORE_E2E=1 (make test).
func needFixtures(t *testing.T) *fixtures {
	t.Helper()
	if _, _, err := etcdtest.Binaries(); err != nil {
		if os.Getenv("EZRESTORE_E2E") == "1" {
			t.Fatalf("EZRESTORE_E2E=1 but %v (scripts/deps.sh installs it)", err)
		}
		t.Skipf("needs a real etcd to write snapshots: %v", err)
	}
	fixOnce.Do(func() { fix, fixErr = makeFixtures() })
	if fixErr != nil {
		t.Fatalf("writing snapshots with etcd: %v", fixErr)
	}
	return fix
}

func makeFixtures() (*fixtures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "ezrestore-snapshot-test-")
	if err != nil {
		return nil, err
	}
	fixDir = dir
	var log strings.Builder
	srv, err := etcdtest.Start(ctx, filepath.Join(dir, "etcd"), etcdtest.Options{Log: &log})
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	f := &fixtures{dir: dir,
		before:    filepath.Join(dir, "before.db"),
		after:     filepath.Join(dir, "after.db"),
		noTrailer: filepath.Join(dir, "member-snap-db.db"),
	}
	put := func(k, v string) int64 {
		if err != nil {
			return 0
		}
		var rev int64
		rev, err = srv.Put(ctx, k, []byte(v))
		return rev
	}
	put("/registry/namespaces/default", "ns")
	put("/registry/namespaces/kube-system", "ns")
	f.createNetTest1 = put("/registry/pods/default/net-test1", "pod v1")
	put("/registry/pods/default/net-test2", "pod")
	f.createNetTest3 = put("/registry/pods/default/net-test3", "pod")
	put("/registry/pods/kube-system/coredns-5d78c9869d-abcde", "pod")
	put("/registry/services/specs/default/kubernetes", "svc")
	put("/registry/services/endpoints/default/kubernetes", "ep")
	put("/registry/apiextensions.k8s.io/customresourcedefinitions/crontabs.stable.example.com", "crd")
	put("/registry/stable.example.com/crontabs/default/my-cron", "cr")
	put("/registry/ranges/serviceips", "range")
	put("/compact-me", "v1")
	f.compactRev = put("/compact-me", "v2")
	f.modNetTest1 = put("/registry/pods/default/net-test1", "pod v2")
	f.revBefore = put("/other/app-key", "x")
	if err != nil {
		return nil, err
	}
	if err := srv.Compact(ctx, f.compactRev); err != nil {
		return nil, err
	}
	if err := srv.SnapshotSave(ctx, f.before); err != nil {
		return nil, err
	}
	if f.revAfter, err = srv.Delete(ctx, "/registry/pods/default/net-test3"); err != nil {
		return nil, err
	}
	if err := srv.SnapshotSave(ctx, f.after); err != nil {
		return nil, err
	}
	srv.Stop()
	if err := etcdtest.CopyFile(srv.BackendPath(), f.noTrailer); err != nil {
		return nil, err
	}
	return f, nil
}

// damaged writes a copy of src changed by edit into the test's temp dir.
func damaged(t *testing.T, src, name string, edit func(data []byte) []byte) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, edit(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	treeOnce sync.Once
	treePath string
	treeErr  error
)

// needTree is an etcd snapshot whose key bucket spans many pages (a branch
// root over leaves), for damage to the tree's links.
func needTree(t *testing.T) string {
	t.Helper()
	needFixtures(t)
	treeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv, err := etcdtest.Start(ctx, filepath.Join(fixDir, "etcd-tree"), etcdtest.Options{})
		if err != nil {
			treeErr = err
			return
		}
		defer srv.Stop()
		value := []byte(strings.Repeat("v", 2000))
		for i := 0; i < 60 && treeErr == nil; i++ {
			_, treeErr = srv.Put(ctx, fmt.Sprintf("/registry/configmaps/default/cm-%03d", i), value)
		}
		if treeErr == nil {
			treePath = filepath.Join(fixDir, "tree.db")
			treeErr = srv.SnapshotSave(ctx, treePath)
		}
	})
	if treeErr != nil {
		t.Fatalf("writing a snapshot with etcd: %v", treeErr)
	}
	return treePath
}
