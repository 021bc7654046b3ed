package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// UploadGzip over a real sshd to two connections at once: both hold the
// same bytes, the hosts' sums match, progress reaches the file size, and
// what crossed the wire is smaller than the file for compressible data.
func TestUploadGzipE2E(t *testing.T) {
	srv, opts := e2eServer(t)
	h := srv.Host("root")
	a, b := dialT(t, h, opts), dialT(t, h, opts)

	dir := t.TempDir()
	local := filepath.Join(dir, "snap.db")
	var data bytes.Buffer
	noise := make([]byte, 64)
	for i := 0; data.Len() < 8<<20; i++ {
		rand.Read(noise)
		data.WriteString(`/registry/pods/default/web-` + hex.EncodeToString(noise[:4]) + `{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"app":"web"}}}`)
		if i%16 == 0 {
			data.Write(noise)
		}
	}
	if err := os.WriteFile(local, data.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data.Bytes())
	want := hex.EncodeToString(sum[:])
	var mu sync.Mutex
	seen := map[string]int64{}
	remotes := []string{filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")}
	// Two hosts in one test: the same sshd, so the same remote path would
	// clash; one call per remote path, both started at once.
	var wg sync.WaitGroup
	results := make([][]StreamResult, 2)
	for i, c := range []Conn{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = UploadGzip(context.Background(), []Conn{c}, local, remotes[i], 0o600, want, func(host string, raw int64) {
				mu.Lock()
				seen[remotes[i]] = raw
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	for i, rs := range results {
		r := rs[0]
		if r.Err != nil {
			t.Fatalf("%s: %v", remotes[i], r.Err)
		}
		got, err := os.ReadFile(remotes[i])
		if err != nil || !bytes.Equal(got, data.Bytes()) {
			t.Fatalf("%s differs from the source (%v)", remotes[i], err)
		}
		if r.SHA256 != want || seen[remotes[i]] != int64(data.Len()) {
			t.Errorf("%s: sum %s, progress %d of %d", remotes[i], r.SHA256, seen[remotes[i]], data.Len())
		}
		if r.Wire <= 0 || r.Wire >= r.Raw {
			t.Errorf("%s: %d bytes on the wire for %d raw", remotes[i], r.Wire, r.Raw)
		}
	}
	// A sum that does not match: refused, nothing left in place.
	bad := UploadGzip(context.Background(), []Conn{a}, local, filepath.Join(dir, "c.db"), 0o600, strings.Repeat("1", 64), nil)
	if bad[0].Err == nil || !strings.Contains(bad[0].Err.Error(), "the bastion's is 1111") {
		t.Errorf("a wrong sum was not refused: %v", bad[0].Err)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.db")); err == nil {
		t.Error("a file with the wrong sum was put in place")
	}
}
