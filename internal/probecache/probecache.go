// Package probecache keeps, between runs on one bastion, what a tool on a
// host printed when it was probed (its version, whether it has a flag), keyed
// by the identity of the tool's file on that host (path, size, mtime, ctime,
// inode, device). A probe of a tool that did not change is then a stat on the
// host, not the start of a Go binary: on a busy host each etcd binary takes
// 15-60 ms of CPU just to print its version, and a restore's preflight waits
// on four of them per member.
//
// The identity is read on the host at every probe, so an upgraded, replaced,
// re-linked or chmod'ed binary (its ctime changes; userspace cannot set
// ctime) is started again. The cache is only ever a shortcut: a file that
// cannot be read or written is an empty cache, never an error.
//
// It imports only the standard library.
package probecache

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// maxAge drops entries not used for this long when the cache is saved.
const maxAge = 90 * 24 * time.Hour

type entry struct {
	Key  string    `json:"key"`
	Out  string    `json:"out"`
	Used time.Time `json:"used"`
}

// Cache is safe for concurrent use. A nil *Cache remembers nothing.
type Cache struct {
	path  string
	mu    sync.Mutex
	m     map[string]map[string]entry // host -> probe -> entry
	dirty bool
}

// DefaultPath is <user cache dir>/ezrestore/probes.json ($XDG_CACHE_HOME or
// ~/.cache on Linux), or "" when there is no such dir.
func DefaultPath() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "ezrestore", "probes.json")
}

// Open reads the cache at path ("" or unreadable: an empty one that Save
// writes to path when it can).
func Open(path string) *Cache {
	c := &Cache{path: path, m: map[string]map[string]entry{}}
	if path == "" {
		return c
	}
	if b, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(b, &c.m) != nil || c.m == nil {
			c.m = map[string]map[string]entry{}
		}
	}
	return c
}

// Get returns what probe printed on host when the tool's identity was key.
func (c *Cache) Get(host, probe string) (key, out string, ok bool) {
	if c == nil {
		return "", "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[host][probe]
	if ok && time.Since(e.Used) > time.Hour {
		e.Used = time.Now().UTC()
		c.m[host][probe] = e
		c.dirty = true
	}
	return e.Key, e.Out, ok
}

// Put remembers what probe printed on host for the tool whose identity is key.
func (c *Cache) Put(host, probe, key, out string) {
	if c == nil || key == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[host][probe]; ok && e.Key == key && e.Out == out {
		return
	}
	if c.m[host] == nil {
		c.m[host] = map[string]entry{}
	}
	c.m[host][probe] = entry{Key: key, Out: out, Used: time.Now().UTC()}
	c.dirty = true
}

// Save writes the cache when it changed (file 0600, dir 0700), dropping
// entries unused for 90 days. It is not synced: a cache lost in a crash only
// costs the probes again.
func (c *Cache) Save() error {
	if c == nil || c.path == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	for h, probes := range c.m {
		for p, e := range probes {
			if time.Since(e.Used) > maxAge {
				delete(probes, p)
			}
		}
		if len(probes) == 0 {
			delete(c.m, h)
		}
	}
	b, err := json.MarshalIndent(c.m, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".probes-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return err
	}
	c.dirty = false
	return nil
}
