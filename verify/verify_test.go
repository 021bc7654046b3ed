package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
)

// snapshotOf runs a real etcd, writes keys (and deletes some, so that the
// revision and the key count differ), saves a snapshot with etcdctl and
// returns it with what it holds. Like the snapshot package's fixtures, it
// runs whenever etcd is installed and must run under EZRESTORE_E2E=1.
func snapshotOf(t *testing.T) (path string, want Expect, binDir string) {
	t.Helper()
	etcd, _, err := etcdtest.Binaries()
	if err != nil {
		if os.Getenv("EZRESTORE_E2E") == "1" {
			t.Fatalf("EZRESTORE_E2E=1 but %v (scripts/deps.sh installs it)", err)
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
	var rev int64
	for i := 0; i < 120; i++ {
		if rev, err = srv.Put(ctx, fmt.Sprintf("/registry/pods/ns-%d/pod-%03d", i%4, i), []byte(strings.Repeat("v", 100+i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 120; i += 10 {
		if rev, err = srv.Delete(ctx, fmt.Sprintf("/registry/pods/ns-%d/pod-%03d", i%4, i)); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(dir, "snapshot_202401021530.db")
	if err := srv.SnapshotSave(ctx, path); err != nil {
		t.Fatal(err)
	}
	return path, Expect{Revision: rev, Keys: 108}, filepath.Dir(etcd)
}

func TestRestoreProvesASnapshot(t *testing.T) {
	snap, want, bin := snapshotOf(t)
	tmp := t.TempDir()
	res, err := Restore(context.Background(), snap, Options{BinDir: bin, Want: want, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != want.Revision || res.Keys != int64(want.Keys) || res.EtcdVersion == "" {
		t.Fatalf("result %+v, want revision %d and %d keys", res, want.Revision, want.Keys)
	}
	t.Logf("restored etcd %s: revision %d, %d keys, in %s", res.EtcdVersion, res.Revision, res.Keys, res.Took.Round(time.Millisecond))
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("left behind in the temp dir: %v", left)
	}
	if st, err := os.Stat(snap); err != nil || st.Size() == 0 {
		t.Fatalf("the snapshot itself was touched: %v", err)
	}
}

func TestRestoreMismatch(t *testing.T) {
	snap, want, bin := snapshotOf(t)
	for _, tc := range []struct {
		name string
		want Expect
		say  string
	}{
		{"revision", Expect{Revision: want.Revision + 1, Keys: want.Keys}, fmt.Sprintf("revision %d, recorded %d", want.Revision, want.Revision+1)},
		{"keys", Expect{Revision: want.Revision, Keys: want.Keys + 3}, fmt.Sprintf("%d keys, recorded %d", want.Keys, want.Keys+3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Restore(context.Background(), snap, Options{BinDir: bin, Want: tc.want})
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.say) || !strings.Contains(err.Error(), snap) {
				t.Fatalf("want ErrMismatch saying %q, got %v", tc.say, err)
			}
		})
	}
}

func TestRestoreRefusesADamagedSnapshot(t *testing.T) {
	snap, want, bin := snapshotOf(t)
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "damaged.db")
	os.WriteFile(bad, data, 0o600)
	_, err = Restore(context.Background(), bad, Options{BinDir: bin, Want: want})
	if err == nil || !strings.Contains(err.Error(), "snapshot restore failed") {
		t.Fatalf("want the restore tool's refusal, got %v", err)
	}
	t.Log(err)
}

func TestRestoreWithoutTrailer(t *testing.T) {
	// A copy of member/snap/db has no sha256 trailer: the restore tool
	// refuses it unless told, and then it restores.
	snap, want, bin := snapshotOf(t)
	data, _ := os.ReadFile(snap)
	raw := filepath.Join(t.TempDir(), "db")
	os.WriteFile(raw, data[:len(data)-32], 0o600)
	if _, err := Restore(context.Background(), raw, Options{BinDir: bin, Want: want}); err == nil {
		t.Fatal("a file without trailer restored without --skip-hash-check")
	}
	res, err := Restore(context.Background(), raw, Options{BinDir: bin, Want: want, SkipHashCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Keys != int64(want.Keys) {
		t.Fatalf("keys %d, want %d", res.Keys, want.Keys)
	}
}

func TestNoEtcdIsAClearError(t *testing.T) {
	empty := t.TempDir()
	_, err := Restore(context.Background(), "/nonexistent.db", Options{BinDir: empty})
	if !errors.Is(err, ErrNoEtcd) || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "--etcd-bin") {
		t.Fatalf("want ErrNoEtcd naming %s and --etcd-bin, got %v", empty, err)
	}
	// etcd alone is not enough: something must restore.
	os.WriteFile(filepath.Join(empty, "etcd"), []byte("#!/bin/sh\n"), 0o755)
	_, err = FindBinaries(empty)
	if !errors.Is(err, ErrNoEtcd) || !strings.Contains(err.Error(), "neither etcdutl nor etcdctl") {
		t.Fatalf("etcd without etcdutl/etcdctl: got %v", err)
	}
	// etcdutl is preferred to etcdctl when both are there (etcd 3.6 has no
	// restore in etcdctl).
	for _, n := range []string{"etcdctl", "etcdutl"} {
		os.WriteFile(filepath.Join(empty, n), []byte("#!/bin/sh\n"), 0o755)
	}
	b, err := FindBinaries(empty)
	if err != nil || filepath.Base(b.Restore) != "etcdutl" {
		t.Fatalf("want etcdutl, got %+v %v", b, err)
	}
}

func TestCountKeysParsesTheGateway(t *testing.T) {
	// The gateway's JSON as etcd 3.4 writes it (int64 as strings); an empty
	// key space has no "count" at all.
	for _, tc := range []struct {
		body      string
		rev, keys int64
	}{
		{`{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"133","raft_term":"2"},"count":"108"}`, 133, 108},
		{`{"header":{"revision":"1","raft_term":"2"}}`, 1, 0},
	} {
		r, err := parseRange([]byte(tc.body))
		if err != nil || r.Revision != tc.rev || r.Keys != tc.keys {
			t.Errorf("%s: got %+v %v", tc.body, r, err)
		}
	}
	if _, err := parseRange(bytes.Repeat([]byte("x"), 3)); err == nil {
		t.Error("garbage parsed")
	}
}
