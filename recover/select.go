package recover

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/ezrestore/ezrestore/objects"
	"github.com/ezrestore/ezrestore/snapshot"
)

// selection is what an operator asked for, read from the snapshot.
type selection struct {
	kvs map[string]*snapshot.KeyValue
	// revision is the snapshot's.
	revision int64
}

// wanted turns OBJECT arguments and --namespace into the keys to read: the
// objects' keys, and for a namespace its own key and every namespaced key
// in it. Bad references are errors naming the argument.
func wanted(refs []string, namespace string) (keys map[string]string, inNamespace func([]byte) bool, err error) {
	keys = map[string]string{} // key -> the argument that named it
	for _, a := range refs {
		ref, err := objects.ParseRef(a)
		if err != nil {
			return nil, nil, err
		}
		keys[ref.Key()] = a
	}
	if namespace == "" {
		return keys, nil, nil
	}
	if msg := badName(namespace); msg != "" {
		return nil, nil, fmt.Errorf("--namespace %q: %s", namespace, msg)
	}
	nsRes, err := objects.Lookup("namespaces")
	if err != nil {
		return nil, nil, err
	}
	keys[objects.Ref{Resource: nsRes, Name: namespace}.Key()] = "--namespace " + namespace
	mark := []byte("/" + namespace + "/")
	inNamespace = func(k []byte) bool {
		if !bytes.Contains(k, mark) {
			return false // most keys, without parsing them
		}
		ref, err := objects.ParseKey(string(k))
		return err == nil && ref.Namespace == namespace
	}
	return keys, inNamespace, nil
}

// badName says why ns is not a namespace name (a DNS label), or "".
func badName(ns string) string {
	if len(ns) > 63 {
		return "longer than 63 characters: not a namespace name"
	}
	for i, c := range ns {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(ns)-1
		if !ok {
			return "not a namespace name (lower-case letters, digits and '-', starting and ending with a letter or digit)"
		}
	}
	return ""
}

// read reads the wanted keys from the snapshot; a named object the snapshot
// does not hold is an error that says so.
func read(path string, keys map[string]string, inNamespace func([]byte) bool) (*selection, error) {
	kvs, rev, err := snapshot.LiveKVs(path, func(k []byte) bool {
		if _, ok := keys[string(k)]; ok {
			return true
		}
		return inNamespace != nil && inNamespace(k)
	})
	if err != nil {
		return nil, err
	}
	var missing []string
	for k, arg := range keys {
		if _, ok := kvs[k]; !ok {
			missing = append(missing, fmt.Sprintf("%s (key %s)", arg, k))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("snapshot %s (revision %d) does not hold %s; `ezrestore snapshot find NAME` says which snapshots do",
			path, rev, strings.Join(missing, ", "))
	}
	return &selection{kvs: kvs, revision: rev}, nil
}
