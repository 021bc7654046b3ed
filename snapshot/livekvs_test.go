package snapshot

import (
	"strings"
	"testing"
)

// TestLiveKVs reads values as the snapshot holds them at its revision: the
// latest of a key written twice, none of a key deleted before the save.
func TestLiveKVs(t *testing.T) {
	f := needFixtures(t)
	pods := func(k []byte) bool { return strings.HasPrefix(string(k), "/registry/pods/default/") }
	kvs, rev, err := LiveKVs(f.before, pods)
	if err != nil {
		t.Fatal(err)
	}
	if rev != f.revBefore || len(kvs) != 3 {
		t.Fatalf("before: revision %d (want %d), %d keys (want 3): %v", rev, f.revBefore, len(kvs), kvs)
	}
	n1 := kvs["/registry/pods/default/net-test1"]
	if n1 == nil || string(n1.Value) != "pod v2" || n1.CreateRevision != f.createNetTest1 || n1.ModRevision != f.modNetTest1 || n1.Version != 2 {
		t.Fatalf("net-test1: %+v; want value %q, create %d, mod %d, version 2", n1, "pod v2", f.createNetTest1, f.modNetTest1)
	}
	kvs, _, err = LiveKVs(f.after, pods)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kvs["/registry/pods/default/net-test3"]; ok || len(kvs) != 2 {
		t.Fatalf("after the delete: %v; want net-test1 and net-test2 only", kvs)
	}
	if _, _, err := LiveKVs(damaged(t, f.before, "zeros.db", func(d []byte) []byte { return make([]byte, len(d)) }), pods); err == nil || !strings.Contains(err.Error(), "zeros.db") {
		t.Fatalf("a file of zeros: %v; want an error naming it", err)
	}
}
