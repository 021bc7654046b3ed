package snapshot

import (
	"bytes"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Match is a live key of a snapshot that matched a Find pattern.
type Match struct {
	Key            string `json:"key"`
	CreateRevision int64  `json:"create_revision"`
	ModRevision    int64  `json:"mod_revision"`
}

// Find lists the keys live at the snapshot's revision that match pattern,
// sorted by key. Without '*' the pattern matches any key containing it. With
// '*' it is a glob in which '*' matches any run of characters, '/' included: a
// glob that starts with '/' must match the whole key ("/registry/pods/*/web-*"
// spans namespaces), any other may match a part of it ("net-test*").
func Find(path, pattern string) ([]Match, error) {
	m := NewMatcher(pattern)
	states := map[string]*keyState{}
	err := view(path, true, func(tx *bolt.Tx, r *reclaimer) error {
		return walk(tx, r, func(rev revision, kv *mvccpb.KeyValue) error {
			if m.Match(kv.Key) {
				track(states, rev, kv)
			}
			return nil
		})
	})
	if err != nil {
		return nil, wrapPath(path, err)
	}
	out := []Match{}
	for key, st := range states {
		if !st.deleted {
			out = append(out, Match{Key: key, CreateRevision: st.create, ModRevision: st.mod})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Matcher is a compiled Find pattern.
type Matcher struct {
	substr []byte   // pattern without '*'
	parts  [][]byte // glob pieces between the '*'s
}

// NewMatcher compiles pattern (see Find).
func NewMatcher(pattern string) *Matcher {
	if !strings.Contains(pattern, "*") {
		return &Matcher{substr: []byte(pattern)}
	}
	if !strings.HasPrefix(pattern, "/") {
		pattern = "*" + pattern + "*"
	}
	m := &Matcher{}
	for _, p := range strings.Split(pattern, "*") {
		m.parts = append(m.parts, []byte(p))
	}
	return m
}

// Match reports whether key matches.
func (m *Matcher) Match(key []byte) bool {
	if m.parts == nil {
		return bytes.Contains(key, m.substr)
	}
	// A glob "a*b*c": key starts with a, ends with c, and holds b in between.
	// Taking each middle piece at its first occurrence is optimal for '*'-only globs.
	first, last := m.parts[0], m.parts[len(m.parts)-1]
	if len(key) < len(first)+len(last) || !bytes.HasPrefix(key, first) || !bytes.HasSuffix(key, last) {
		return false
	}
	rest := key[len(first) : len(key)-len(last)]
	for _, p := range m.parts[1 : len(m.parts)-1] {
		i := bytes.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}
