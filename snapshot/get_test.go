package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	f := needFixtures(t)
	kv, err := Get(f.before, "/registry/pods/default/net-test1")
	if err != nil {
		t.Fatal(err)
	}
	if kv == nil || string(kv.Value) != "pod v2" || kv.CreateRevision != f.createNetTest1 || kv.ModRevision != f.modNetTest1 || kv.Version != 2 {
		t.Fatalf("net-test1 = %+v, want pod v2 created at %d modified at %d", kv, f.createNetTest1, f.modNetTest1)
	}
	if kv, err := Get(f.before, "/registry/pods/default/net-test3"); err != nil || kv == nil || string(kv.Value) != "pod" {
		t.Fatalf("net-test3 before its deletion = %+v, %v", kv, err)
	}
	// Deleted: the tombstone is the latest version.
	if kv, err := Get(f.after, "/registry/pods/default/net-test3"); err != nil || kv != nil {
		t.Fatalf("net-test3 after its deletion = %+v, %v", kv, err)
	}
	// A prefix of a key is not the key.
	if kv, err := Get(f.before, "/registry/pods/default/net-test"); err != nil || kv != nil {
		t.Fatalf("a prefix matched: %+v, %v", kv, err)
	}
	notDB := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 400)), 0o600)
	if _, err := Get(notDB, "/registry/pods/default/net-test1"); err == nil || !strings.Contains(err.Error(), notDB) || !strings.Contains(err.Error(), "not an etcd snapshot") {
		t.Fatalf("a text file: %v", err)
	}
}
