package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Bucket and key names etcd's mvcc store uses in its bbolt backend.
var (
	keyBucket             = []byte("key")
	metaBucket            = []byte("meta")
	consistentIndexKey    = []byte("consistent_index")
	finishedCompactRevKey = []byte("finishedCompactRev")
)

// revKeyLen is the length of a revision key in the key bucket: 8 bytes of
// main revision, '_', 8 bytes of sub revision. A tombstone has one more byte, 't'.
const revKeyLen = 17

// lockWait bounds how long we wait for a file another process holds with an
// exclusive bbolt lock (a running etcd's member/snap/db).
const lockWait = 2 * time.Second

// reclaimEvery is how many bytes of keys and values we read between two
// hints to the kernel that the pages read so far may leave our resident set.
const reclaimEvery = 32 << 20

// view opens path read-only as a bbolt database, checks that the file holds
// all the pages the database claims, and runs fn in a read transaction. With
// scan set (fn will walk the key bucket) the links of the key tree are
// checked first (see checkTree).
// Panics inside bbolt (it asserts on corrupt pages) and faults on the mapping
// become errors that name the file: corrupt input must never crash us.
func view(path string, scan bool, fn func(tx *bolt.Tx, r *reclaimer) error) (err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%s: empty file, not an etcd snapshot", path)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: corrupt database (bbolt: %v)", path, r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	db, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true, Timeout: lockWait, NoStatistics: true})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return fmt.Errorf("%s: locked by another process (a running etcd's own file? copy it or stop etcd first)", path)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
			return fmt.Errorf("%s: not an etcd snapshot (not a bbolt database, or its header is damaged): %w", path, err)
		}
		return fmt.Errorf("%s: not an etcd snapshot: cannot open it as a bbolt database: %w", path, err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer tx.Rollback()

	// bbolt maps the file and trusts its page count: pages past the end of a
	// truncated file would fault on first touch. Refuse such a file up front.
	if need := tx.Size(); need > fi.Size() {
		return fmt.Errorf("%s: truncated: the database needs %d bytes, the file has %d", path, need, fi.Size())
	}
	r := newReclaimer(db, fi.Size())
	defer r.release()
	if b := tx.Bucket(keyBucket); b != nil && scan {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := checkTree(f, tx, db.Info().PageSize, b); err != nil {
			return err
		}
	}
	return fn(tx, r)
}

// revision is a key of the key bucket, decoded.
type revision struct {
	Main, Sub int64
	Tombstone bool
}

func parseRevKey(k []byte) (revision, error) {
	if (len(k) != revKeyLen && len(k) != revKeyLen+1) || k[8] != '_' || (len(k) == revKeyLen+1 && k[revKeyLen] != 't') {
		return revision{}, fmt.Errorf("key bucket entry %x is not an etcd revision", k)
	}
	return revision{
		Main:      int64(binary.BigEndian.Uint64(k[0:8])),
		Sub:       int64(binary.BigEndian.Uint64(k[9:17])),
		Tombstone: len(k) == revKeyLen+1,
	}, nil
}

// walk calls fn for every entry of the key bucket in revision order. kv is
// reused between calls: fn must copy what it keeps. Values are never retained
// here, so memory stays flat whatever the size of the file.
func walk(tx *bolt.Tx, r *reclaimer, fn func(rev revision, kv *mvccpb.KeyValue) error) error {
	b := tx.Bucket(keyBucket)
	if b == nil {
		return errNoKeyBucket
	}
	r.sequential()
	var kv mvccpb.KeyValue
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		rev, err := parseRevKey(k)
		if err != nil {
			return err
		}
		kv = mvccpb.KeyValue{Key: kv.Key[:0], Value: kv.Value[:0]} // keep the buffers, drop the fields
		if err := kv.Unmarshal(v); err != nil {
			return fmt.Errorf("revision %d: value is not an etcd KeyValue: %w", rev.Main, err)
		}
		if err := fn(rev, &kv); err != nil {
			return err
		}
		r.read(len(k) + len(v))
	}
	return nil
}

var errNoKeyBucket = errors.New(`no "key" bucket: a bbolt database, but not etcd's`)

// meta reads the consistent index and the finished compaction revision.
func readMeta(tx *bolt.Tx) (consistentIndex uint64, compactRev int64) {
	b := tx.Bucket(metaBucket)
	if b == nil {
		return 0, 0
	}
	if v := b.Get(consistentIndexKey); len(v) == 8 {
		consistentIndex = binary.BigEndian.Uint64(v)
	}
	if v := b.Get(finishedCompactRevKey); len(v) >= 8 {
		compactRev = int64(binary.BigEndian.Uint64(v[:8]))
	}
	return consistentIndex, compactRev
}

// lastRevision is the store's revision: the newest entry of the key bucket,
// or the compaction revision if that is later (etcd restores it the same way).
func lastRevision(tx *bolt.Tx) (int64, error) {
	b := tx.Bucket(keyBucket)
	if b == nil {
		return 0, errNoKeyBucket
	}
	var rev int64
	if k, _ := b.Cursor().Last(); k != nil {
		r, err := parseRevKey(k)
		if err != nil {
			return 0, err
		}
		rev = r.Main
	}
	if _, compact := readMeta(tx); compact > rev {
		rev = compact
	}
	return rev, nil
}
