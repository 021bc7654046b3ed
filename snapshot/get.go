package snapshot

// Reading one key's value, as `ezrestore snapshot get` and `diff --object` do.

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// KeyValue is a key's latest version in a snapshot, with its value as etcd
// stores it (an apiserver's value encrypted at rest stays encrypted).
type KeyValue struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
}

// Get returns key's value at the snapshot's revision, nil when the key is not
// live there (never written, or deleted). The key bucket is ordered by
// revision, not by key, so every entry is visited; only the key field at the
// head of each entry is read, and an entry is decoded in full only when its
// key matches, which keeps a lookup in a file of gigabytes to the time it
// takes to walk its pages.
func Get(path, key string) (*KeyValue, error) {
	want := []byte(key)
	var found *KeyValue
	err := view(path, true, func(tx *bolt.Tx, r *reclaimer) error {
		b := tx.Bucket(keyBucket)
		if b == nil {
			return errNoKeyBucket
		}
		r.sequential()
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r.read(len(k) + len(v))
			if !bytes.Equal(keyField(v), want) {
				continue
			}
			rev, err := parseRevKey(k)
			if err != nil {
				return err
			}
			if rev.Tombstone {
				found = nil
				continue
			}
			var kv mvccpb.KeyValue
			if err := kv.Unmarshal(v); err != nil {
				return fmt.Errorf("revision %d: value is not an etcd KeyValue: %w", rev.Main, err)
			}
			found = &KeyValue{Key: key, Value: bytes.Clone(kv.Value), CreateRevision: kv.CreateRevision,
				ModRevision: rev.Main, Version: kv.Version, Lease: kv.Lease}
		}
		return nil
	})
	if err != nil {
		return nil, wrapPath(path, err)
	}
	return found, nil
}

// keyField returns the key of an encoded mvccpb.KeyValue without decoding
// the rest: the encoder writes field 1 (key, length-delimited, tag 0x0a)
// first. nil when the entry does not start that way; the full decoder then
// never sees it, which is right: an entry without a key matches no key.
func keyField(v []byte) []byte {
	if len(v) < 2 || v[0] != 0x0a {
		return nil
	}
	n, w := binary.Uvarint(v[1:])
	if w <= 0 || n > uint64(len(v)-1-w) {
		return nil
	}
	return v[1+w : 1+w+int(n)]
}
