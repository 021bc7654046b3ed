package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
)

func fileSum(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func TestCheckTrailer(t *testing.T) {
	f := needFixtures(t)
	for _, tc := range []struct {
		name           string
		path           string
		hasTrailer, ok bool
	}{
		{"etcdctl snapshot save", f.before, true, true},
		{"member/snap/db copy", f.noTrailer, false, false},
		{"one byte changed", damaged(t, f.before, "flip.db", func(d []byte) []byte { d[len(d)/2] ^= 0x40; return d }), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			has, ok, sum, err := CheckTrailer(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if has != tc.hasTrailer || ok != tc.ok {
				t.Errorf("hasTrailer, ok = %v, %v; want %v, %v", has, ok, tc.hasTrailer, tc.ok)
			}
			if want := fileSum(t, tc.path); sum != want {
				t.Errorf("sha256 %s, sha256 of the file is %s", sum, want)
			}
		})
	}
}

// etcdctlStatus is what etcd's own tool says about a snapshot.
func etcdctlStatus(t *testing.T, p string) (rev int64) {
	t.Helper()
	_, etcdctl, err := etcdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(etcdctl, "snapshot", "status", "-w", "json", p)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("etcdctl snapshot status %s: %v", p, err)
	}
	var st struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("etcdctl snapshot status: %v: %s", err, out)
	}
	return st.Revision
}

func TestInspect(t *testing.T) {
	f := needFixtures(t)
	beforeResources := map[string]int{
		"namespaces": 2, "pods": 4, "services": 1, "endpoints": 1, "ranges": 1,
		"customresourcedefinitions.apiextensions.k8s.io": 1, "crontabs.stable.example.com": 1,
	}
	afterResources := map[string]int{}
	for k, v := range beforeResources {
		afterResources[k] = v
	}
	afterResources["pods"] = 3
	for _, tc := range []struct {
		name       string
		path       string
		verified   *bool
		rev        int64
		keys       int
		resources  map[string]int
		namespaces map[string]int
	}{
		{"before", f.before, ptr(true), f.revBefore, 13, beforeResources, map[string]int{"default": 6, "kube-system": 1}},
		{"after", f.after, ptr(true), f.revAfter, 12, afterResources, map[string]int{"default": 5, "kube-system": 1}},
		{"no trailer", f.noTrailer, nil, f.revAfter, 12, afterResources, map[string]int{"default": 5, "kube-system": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Inspect(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(info.HashVerified, tc.verified) {
				t.Errorf("hash_verified %v, want %v", deref(info.HashVerified), deref(tc.verified))
			}
			if info.Revision != tc.rev || info.Keys != tc.keys {
				t.Errorf("revision %d keys %d, want %d %d", info.Revision, info.Keys, tc.rev, tc.keys)
			}
			if tc.verified != nil {
				if r := etcdctlStatus(t, tc.path); r != info.Revision {
					t.Errorf("etcdctl snapshot status says revision %d, we say %d", r, info.Revision)
				}
			}
			if info.CompactRevision != f.compactRev {
				t.Errorf("compact_revision %d, want %d", info.CompactRevision, f.compactRev)
			}
			if !reflect.DeepEqual(info.Resources, tc.resources) {
				t.Errorf("resources %v, want %v", info.Resources, tc.resources)
			}
			if !reflect.DeepEqual(info.Namespaces, tc.namespaces) {
				t.Errorf("namespaces %v, want %v", info.Namespaces, tc.namespaces)
			}
			if info.OtherKeys != 2 || info.ConsistentIndex == 0 || info.SHA256 != fileSum(t, tc.path) {
				t.Errorf("other_keys %d consistent_index %d sha256 %s", info.OtherKeys, info.ConsistentIndex, info.SHA256)
			}
			rev, err := Revision(tc.path)
			if err != nil || rev != tc.rev {
				t.Errorf("Revision = %d, %v; want %d", rev, err, tc.rev)
			}
		})
	}
}

func TestInspectJSONFieldNames(t *testing.T) {
	f := needFixtures(t)
	info, err := Inspect(f.before)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(info)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	for _, k := range []string{"size", "sha256", "hash_verified", "revision", "compact_revision", "keys", "resources", "namespaces"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, data)
		}
	}
	info, _ = Inspect(f.noTrailer)
	data, _ = json.Marshal(info)
	if strings.Contains(string(data), "hash_verified") {
		t.Errorf("a file without trailer must have no hash_verified: %s", data)
	}
}

func TestFind(t *testing.T) {
	f := needFixtures(t)
	for _, tc := range []struct {
		file, pattern string
		want          []Match
	}{
		{f.before, "net-test3", []Match{{"/registry/pods/default/net-test3", f.createNetTest3, f.createNetTest3}}},
		{f.after, "net-test3", []Match{}},
		{f.noTrailer, "net-test3", []Match{}},
		{f.after, "/registry/pods/*/net-test*", []Match{
			{"/registry/pods/default/net-test1", f.createNetTest1, f.modNetTest1},
			{"/registry/pods/default/net-test2", f.createNetTest1 + 1, f.createNetTest1 + 1},
		}},
		{f.after, "*coredns*", []Match{{"/registry/pods/kube-system/coredns-5d78c9869d-abcde", f.createNetTest3 + 1, f.createNetTest3 + 1}}},
		{f.after, "/registry/pods/*", nil}, // checked by count below
		{f.after, "pods/default", nil},
		{f.after, "/registry/pods", nil},
		{f.after, "nothing-like-this", []Match{}},
	} {
		got, err := Find(tc.file, tc.pattern)
		if err != nil {
			t.Fatalf("Find(%s, %q): %v", filepath.Base(tc.file), tc.pattern, err)
		}
		if tc.want == nil {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Find(%s, %q) = %v, want %v", filepath.Base(tc.file), tc.pattern, got, tc.want)
		}
	}
	counts := map[string]int{"/registry/pods/*": 3, "pods/default": 2, "/registry/pods": 3, "*": 12, "/registry/*/default/*": 5, "net-test*": 2, "/net-test*": 0}
	for pattern, want := range counts {
		got, _ := Find(f.after, pattern)
		if len(got) != want {
			t.Errorf("Find(after, %q): %d keys, want %d: %v", pattern, len(got), want, got)
		}
	}
}

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		pattern, key string
		want         bool
	}{
		{"net", "/registry/pods/default/net-test3", true},
		{"/registry/pods/*/net-*", "/registry/pods/default/net-test3", true},
		{"/registry/pods/*/net-*", "/registry/pods/default/web", false},
		{"*test3", "/registry/pods/default/net-test3", true},
		{"*test", "/registry/pods/default/net-test3", true}, // not anchored: a part of the key
		{"/*test", "/registry/pods/default/net-test3", false},
		{"/registry/*/net-test3", "/registry/pods/default/net-test3", true},
		{"/registry/*/net-test", "/registry/pods/default/net-test3", false},
		{"net-test*", "/registry/pods/default/net-test3", true},
		{"/a*a", "/a", false},
		{"/a*a", "/aa", true},
		{"*", "", true},
		{"/a**b", "/ab", true},
		{"/x*y*z", "/xzy", false},
		{"x*y*z", "/xzy", false},
		{"x*y*z", "/x/y/z/", true},
	} {
		if got := NewMatcher(tc.pattern).Match([]byte(tc.key)); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.key, got, tc.want)
		}
	}
}

// Damaged files are reported, with the file's name, never as a crash.
func TestDamagedFiles(t *testing.T) {
	f := needFixtures(t)
	truncate := func(d []byte) []byte { return d[:len(d)/2] }
	for _, tc := range []struct {
		name   string
		path   string
		errHas string
	}{
		{"truncated", damaged(t, f.before, "truncated.db", truncate), "truncated"},
		{"truncated no trailer", damaged(t, f.noTrailer, "truncated-nohash.db", truncate), "truncated"},
		{"cut at first page", damaged(t, f.before, "tiny.db", func(d []byte) []byte { return d[:4096] }), ""},
		{"empty", damaged(t, f.before, "empty.db", func([]byte) []byte { return nil }), "empty"},
		{"text", damaged(t, f.before, "text.db", func([]byte) []byte { return []byte(strings.Repeat("not a database\n", 1000)) }), "not a bbolt database"},
		{"header zeroed", damaged(t, f.before, "zero-head.db", func(d []byte) []byte {
			clear(d[:8192])
			return d
		}), "not a bbolt database"},
		{"pages zeroed", damaged(t, f.before, "zero-pages.db", func(d []byte) []byte {
			clear(d[8192 : len(d)-32])
			return d
		}), "corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Inspect(tc.path)
			if err == nil {
				t.Fatalf("Inspect accepted a damaged file")
			}
			if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q should name the file and say %q", err, tc.errHas)
			}
			if _, err := Find(tc.path, "net"); err == nil {
				t.Errorf("Find accepted a damaged file")
			}
			if _, err := Revision(tc.path); err == nil {
				t.Errorf("Revision accepted a damaged file")
			}
		})
	}
}

// Random byte damage anywhere in real snapshots: every outcome is a result or
// an error, never a panic.
func TestRandomDamageNeverPanics(t *testing.T) {
	f := needFixtures(t)
	rng := rand.New(rand.NewSource(4))
	for _, src := range []string{f.before, f.noTrailer} {
		orig, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for i := 0; i < 300; i++ {
			d := append([]byte(nil), orig...)
			for n := 1 + rng.Intn(8); n > 0; n-- {
				d[rng.Intn(len(d))] ^= byte(1 + rng.Intn(255))
			}
			p := filepath.Join(dir, "x.db")
			if err := os.WriteFile(p, d, 0o600); err != nil {
				t.Fatal(err)
			}
			info, err := Inspect(p)
			if err == nil && info.HashVerified != nil && *info.HashVerified && !strings.HasSuffix(src, "member-snap-db.db") {
				t.Fatalf("damage %d not seen by the trailer check", i)
			}
			_, _ = Find(p, "*net*")
			_, _ = Revision(p)
		}
	}
}

// A bbolt database that is not etcd's is named as such.
func TestNotEtcd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("stuff")); return err })
	db.Close()
	_, err = Inspect(p)
	if err == nil || !strings.Contains(err.Error(), "not etcd's") || !strings.Contains(err.Error(), p) {
		t.Errorf("Inspect = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func deref(b *bool) any {
	if b == nil {
		return "absent"
	}
	return *b
}
