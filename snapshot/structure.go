package snapshot

import (
	"encoding/binary"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// bbolt page layout (its on-disk format): a 16-byte header {id u64, flags
// u16, count u16, overflow u32}; a branch page then holds count elements of
// {pos u32, ksize u32, pgid u64}.
const (
	pageHeaderSize = 16
	branchElemSize = 16
	branchPageFlag = 0x01
	leafPageFlag   = 0x02
	// maxTreeDepth is far beyond any real tree: a bbolt B+tree of a terabyte
	// with 4 KiB pages is about 6 levels deep.
	maxTreeDepth = 32
)

// checkTree walks the branch pages of bucket b's B+tree, reading the file
// itself rather than bbolt's mapping, and fails on a child outside the file,
// a page that is not a branch or a leaf, a branch reached twice or a tree
// deeper than maxTreeDepth. bbolt's cursor trusts those links: a damaged
// branch that points back up the tree sends it into an endless loop instead
// of a panic we could recover from. Leaves are only checked by their header.
func checkTree(f *os.File, tx *bolt.Tx, pageSize int, b *bolt.Bucket) error {
	root := uint64(b.Root())
	if root == 0 {
		return nil // an inline bucket: no pages of its own
	}
	hwm := uint64(tx.Size()) / uint64(pageSize)
	seen := map[uint64]bool{}
	hdr := make([]byte, pageHeaderSize)
	var visit func(id uint64, depth int) error
	visit = func(id uint64, depth int) error {
		if id < 2 || id >= hwm {
			return fmt.Errorf("corrupt database: page %d is outside the database (%d pages)", id, hwm)
		}
		if depth > maxTreeDepth {
			return fmt.Errorf("corrupt database: the key tree is deeper than %d levels at page %d (a loop in its links)", maxTreeDepth, id)
		}
		off := int64(id) * int64(pageSize)
		if _, err := f.ReadAt(hdr, off); err != nil {
			return fmt.Errorf("read page %d: %w", id, err)
		}
		if got := binary.LittleEndian.Uint64(hdr[0:8]); got != id {
			return fmt.Errorf("corrupt database: page %d says it is page %d", id, got)
		}
		flags := binary.LittleEndian.Uint16(hdr[8:10])
		count := int(binary.LittleEndian.Uint16(hdr[10:12]))
		overflow := uint64(binary.LittleEndian.Uint32(hdr[12:16]))
		switch flags {
		case leafPageFlag:
			return nil
		case branchPageFlag:
		default:
			return fmt.Errorf("corrupt database: page %d of the key tree has type %#x, neither branch nor leaf", id, flags)
		}
		if seen[id] {
			return fmt.Errorf("corrupt database: branch page %d is linked twice in the key tree", id)
		}
		seen[id] = true
		if id+overflow >= hwm || pageHeaderSize+count*branchElemSize > int(overflow+1)*pageSize {
			return fmt.Errorf("corrupt database: branch page %d does not fit in the database", id)
		}
		elems := make([]byte, count*branchElemSize)
		if _, err := f.ReadAt(elems, off+pageHeaderSize); err != nil {
			return fmt.Errorf("read page %d: %w", id, err)
		}
		for i := 0; i < count; i++ {
			child := binary.LittleEndian.Uint64(elems[i*branchElemSize+8:])
			if err := visit(child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(root, 0)
}
