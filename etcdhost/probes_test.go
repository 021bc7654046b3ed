package etcdhost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/probecache"
	"github.com/ezrestore/ezrestore/internal/testkit/localconn"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// A tool the cache knows is not started again; one whose file changed is,
// and the new answer replaces the old. Real sh and stat, a fake tool that
// counts its starts.
func TestProbesStartAToolOnlyWhenItsFileChanged(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "etc dutl") // a space: the path is quoted
	starts := filepath.Join(dir, "starts")
	write := func(version string) {
		t.Helper()
		script := "#!/bin/sh\necho x >> " + transport.Quote(starts) + "\necho 'etcdutl version: " + version + "'\n"
		if err := os.WriteFile(tool+".new", []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tool+".new", tool); err != nil { // a new file, as an upgrade installs one
			t.Fatal(err)
		}
	}
	count := func() int {
		b, _ := os.ReadFile(starts)
		return strings.Count(string(b), "x")
	}
	cachePath := filepath.Join(dir, "cache", "probes.json")
	h := &inventory.Host{Name: "h1", Address: "127.0.0.1", Port: 22}
	conn := localconn.Conn{H: h}
	probe := func(cache *probecache.Cache) string {
		t.Helper()
		pr := newProbes(cache, h)
		res, err := conn.Run(context.Background(), "p="+transport.Quote(tool)+"; "+pr.script("etcdutl version", `"$p" version`))
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("probe: %v %s", err, res.Stderr)
		}
		out, remember := pr.read("etcdutl version", string(res.Stdout))
		remember()
		return strings.TrimSpace(out)
	}

	write("3.6.1")
	cache := probecache.Open(cachePath)
	if got := probe(cache); got != "etcdutl version: 3.6.1" || count() != 1 {
		t.Fatalf("first probe: %q after %d starts", got, count())
	}
	if got := probe(cache); got != "etcdutl version: 3.6.1" || count() != 1 {
		t.Fatalf("the cached tool was started again (%d starts) or answered %q", count(), got)
	}
	if err := cache.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cachePath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", fi, err)
	}
	// Another run on this bastion reads the saved cache.
	cache = probecache.Open(cachePath)
	if got := probe(cache); got != "etcdutl version: 3.6.1" || count() != 1 {
		t.Fatalf("after a reload: %q, %d starts", got, count())
	}
	// An upgrade: a new file at the same path.
	time.Sleep(10 * time.Millisecond)
	write("3.6.2")
	if got := probe(cache); got != "etcdutl version: 3.6.2" || count() != 2 {
		t.Fatalf("after the upgrade: %q after %d starts, want the new version from a new start", got, count())
	}
	if got := probe(cache); got != "etcdutl version: 3.6.2" || count() != 2 {
		t.Fatalf("the upgraded tool was not remembered: %q, %d starts", got, count())
	}
	// No cache at all: every probe starts the tool.
	if got := probe(nil); got != "etcdutl version: 3.6.2" || count() != 3 {
		t.Fatalf("without a cache: %q, %d starts", got, count())
	}
}
