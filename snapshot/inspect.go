package snapshot

import (
	"fmt"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Info is what Inspect learns about one snapshot file.
type Info struct {
	Path string `json:"path"`
	// Size is the file's size in bytes, SHA256 the digest of the whole file.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// HashVerified is whether the sha256 trailer etcdctl appends matches the
	// content; nil when the file has no trailer (a copy of member/snap/db).
	HashVerified *bool `json:"hash_verified,omitempty"`
	// Revision is the store's revision; CompactRevision the last finished compaction.
	Revision        int64 `json:"revision"`
	CompactRevision int64 `json:"compact_revision"`
	// Keys counts the live keys at Revision (latest version not a deletion).
	Keys int `json:"keys"`
	// ConsistentIndex is the raft index the backend had applied.
	ConsistentIndex uint64 `json:"consistent_index"`
	// Resources counts live keys per Kubernetes resource (/registry/<resource>/...);
	// a resource under an API group is written plural.group, as kubectl does.
	Resources map[string]int `json:"resources"`
	// Namespaces counts live namespaced Kubernetes keys per namespace.
	Namespaces map[string]int `json:"namespaces"`
	// OtherKeys counts live keys outside /registry/.
	OtherKeys int `json:"other_keys"`
	// Revisions counts the entries of the key bucket: every version kept since the last compaction.
	Revisions int `json:"revisions"`
	// DBSize is the size of the bbolt database inside the file.
	DBSize int64 `json:"db_size"`
}

// keyState is the latest known state of one key during a scan.
type keyState struct {
	create, mod int64
	deleted     bool
}

// Inspect reads the whole file once for its digest and once through the
// database. When the file is not a readable etcd database the error is
// returned together with what was learnt before (size, digest, trailer).
func Inspect(path string) (*Info, error) {
	hasTrailer, ok, sum, err := CheckTrailer(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	info := &Info{Path: path, Size: fi.Size(), SHA256: sum,
		Resources: map[string]int{}, Namespaces: map[string]int{}}
	if hasTrailer {
		info.HashVerified = &ok
	}
	err = view(path, true, func(tx *bolt.Tx, r *reclaimer) error {
		info.DBSize = tx.Size()
		info.ConsistentIndex, info.CompactRevision = readMeta(tx)
		rev, err := lastRevision(tx)
		if err != nil {
			return err
		}
		info.Revision = rev
		states := map[string]*keyState{}
		err = walk(tx, r, func(rev revision, kv *mvccpb.KeyValue) error {
			info.Revisions++
			track(states, rev, kv)
			return nil
		})
		if err != nil {
			return err
		}
		for key, st := range states {
			if st.deleted {
				continue
			}
			info.Keys++
			res, ns, ok := classify(key)
			if !ok {
				info.OtherKeys++
				continue
			}
			info.Resources[res]++
			if ns != "" {
				info.Namespaces[ns]++
			}
		}
		return nil
	})
	if err != nil {
		return info, wrapPath(path, err)
	}
	return info, nil
}

// Damage says what is wrong with an inspected file that could be read: its
// sha256 trailer does not match. It is nil for an intact file.
func (i *Info) Damage() error {
	if i.HashVerified != nil && !*i.HashVerified {
		return fmt.Errorf("%s: the sha256 trailer does not match the content: the file is damaged", i.Path)
	}
	return nil
}

// track records rev as the latest state of kv's key.
func track(states map[string]*keyState, rev revision, kv *mvccpb.KeyValue) {
	st := states[string(kv.Key)] // no allocation for the lookup
	if st == nil {
		st = &keyState{}
		states[string(kv.Key)] = st
	}
	st.mod = rev.Main
	st.deleted = rev.Tombstone
	if !rev.Tombstone {
		st.create = kv.CreateRevision
	}
}

// Revision is the snapshot's revision, read from the last key of the key
// bucket without scanning the rest.
func Revision(path string) (int64, error) {
	var rev int64
	err := view(path, false, func(tx *bolt.Tx, _ *reclaimer) error {
		var err error
		rev, err = lastRevision(tx)
		return err
	})
	return rev, wrapPath(path, err)
}

// classify maps a Kubernetes key to its resource and namespace:
//
//	/registry/pods/default/web-0                      -> pods, default
//	/registry/namespaces/default                      -> namespaces, ""
//	/registry/services/specs/default/kubernetes       -> services, default
//	/registry/services/endpoints/default/kubernetes   -> endpoints, default
//	/registry/apiextensions.k8s.io/customresourcedefinitions/x.example.com
//	                                                  -> customresourcedefinitions.apiextensions.k8s.io, ""
//
// Object names cannot contain '/', so a key with two segments after its
// resource is namespaced.
func classify(key string) (resource, namespace string, ok bool) {
	const prefix = "/registry/"
	if !strings.HasPrefix(key, prefix) {
		return "", "", false
	}
	parts := strings.Split(key[len(prefix):], "/")
	resource, rest := parts[0], parts[1:]
	if strings.Contains(resource, ".") && len(rest) >= 2 {
		resource, rest = rest[0]+"."+resource, rest[1:]
	}
	if resource == "services" && len(rest) >= 1 {
		switch rest[0] {
		case "specs":
			rest = rest[1:]
		case "endpoints":
			resource, rest = "endpoints", rest[1:]
		}
	}
	if len(rest) >= 2 {
		namespace = rest[len(rest)-2]
	}
	return resource, namespace, true
}
