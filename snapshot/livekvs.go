package snapshot

import (
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// History calls fn for every write the snapshot still holds, oldest
// first: each put with its value, each delete with deleted set. key and
// value are reused between calls (fn copies what it keeps). A key's last
// call says whether it is live at the snapshot's revision; the walk holds
// nothing, so a caller that keeps little reads any size in little memory.
func History(path string, fn func(key, value []byte, deleted bool) error) error {
	err := view(path, true, func(tx *bolt.Tx, r *reclaimer) error {
		return walk(tx, r, func(rev revision, kv *mvccpb.KeyValue) error {
			return fn(kv.Key, kv.Value, rev.Tombstone)
		})
	})
	return wrapPath(path, err)
}

// LiveKVs returns the keys live at the snapshot's revision for which want
// is true, with their values, and the snapshot's revision. It streams
// through the file once; only the wanted keys' latest values are held.
func LiveKVs(path string, want func(key []byte) bool) (map[string]*KeyValue, int64, error) {
	out := map[string]*KeyValue{}
	var last int64
	err := view(path, true, func(tx *bolt.Tx, r *reclaimer) error {
		var err error
		if last, err = lastRevision(tx); err != nil {
			return err
		}
		return walk(tx, r, func(rev revision, kv *mvccpb.KeyValue) error {
			if !want(kv.Key) {
				return nil
			}
			if rev.Tombstone {
				delete(out, string(kv.Key))
				return nil
			}
			e := out[string(kv.Key)]
			if e == nil {
				e = &KeyValue{Key: string(kv.Key)}
				out[e.Key] = e
			}
			e.Value = append(e.Value[:0], kv.Value...)
			e.CreateRevision, e.ModRevision, e.Version, e.Lease = kv.CreateRevision, rev.Main, kv.Version, kv.Lease
			return nil
		})
	})
	if err != nil {
		return nil, 0, wrapPath(path, err)
	}
	return out, last, nil
}
