// Package snapshot reads etcd snapshot files offline, and keeps a cluster's
// backup dir (<base>/clusters/<name>/backup/, kubeasz's layout).
//
// It owns:
//   - one file: Inspect (digest, sha256 trailer, revision, key counts),
//     Find (live keys matching a pattern), Revision, CheckTrailer;
//   - a backup dir, read: List, Catalog (every file checked), ResolveChecked
//     (a restore's --snapshot: snapshot.db, latest, before:<time>, a file);
//   - a backup dir, written: AddBackup, WriteSidecar, RefreshLatest, Prune;
//   - what results mean for a command: FindAll and its tally,
//     InspectStatus, CatalogStatus.
//
// A snapshot is etcd's bbolt database, opened here read-only with
// go.etcd.io/bbolt, whose "key" bucket maps revisions to mvccpb.KeyValue
// records. Every scan streams through that bucket once in revision order and
// keeps no values, so memory depends on the number of distinct keys, not on
// the size of the file.
//
// It also reads a file as Kubernetes objects (GetObject, ListObjects, Get),
// with package objects decoding keys and values.
//
// It works on local files only: it must not import the SSH transport, the
// engine, steps, restore, backup, cmd or lab. Its only project imports are
// internal/atomicfile and objects (keys and values, no I/O of its own).
package snapshot
