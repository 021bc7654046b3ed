package snapshot

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyTreeRoot returns the page size and the key bucket's root page of a
// snapshot, which must be a branch page.
func keyTreeRoot(t *testing.T, path string) (pageSize int, root uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(keyBucket).Root())
		return nil
	})
	return db.Info().PageSize, root
}

// A damaged link in the key tree ends in an error naming the file, not in
// bbolt's cursor looping forever.
func TestDamagedTreeLinks(t *testing.T) {
	src := needTree(t)
	pageSize, root := keyTreeRoot(t, src)
	if root == 0 {
		t.Fatal("the key bucket is inline; the fixture needs more keys")
	}
	// Element i's child pgid sits at header + i*16 + 8 of the root page.
	link := func(i int, to uint64) func([]byte) []byte {
		return func(d []byte) []byte {
			off := int(root)*pageSize + pageHeaderSize + i*branchElemSize + 8
			if flags := binary.LittleEndian.Uint16(d[int(root)*pageSize+8:]); flags != branchPageFlag {
				t.Fatalf("root page %d has flags %#x, not a branch", root, flags)
			}
			binary.LittleEndian.PutUint64(d[off:], to)
			return d
		}
	}
	for _, tc := range []struct {
		name, errHas string
		edit         func([]byte) []byte
	}{
		{"loop back to the root", "linked twice", link(1, root)},
		{"child outside the file", "outside the database", link(0, 1<<40)},
		{"child is a meta page", "outside the database", link(0, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := damaged(t, src, "tree.db", tc.edit)
			done := make(chan error, 2)
			go func() {
				_, err := Inspect(p)
				done <- err
				_, err = Find(p, "cm-")
				done <- err
			}()
			for i := 0; i < 2; i++ {
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), p) {
						t.Errorf("error %v; want one naming the file and saying %q", err, tc.errHas)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("no answer after 20 s: the scan loops on the damaged tree")
				}
			}
		})
	}
	// The undamaged file scans fine.
	if info, err := Inspect(src); err != nil || info.Keys != 60 {
		t.Errorf("Inspect(tree) = %v keys, %v", info.Keys, err)
	}
}
