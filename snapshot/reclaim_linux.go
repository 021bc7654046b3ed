package snapshot

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// reclaimer keeps the resident set of a long scan small. bbolt reads the
// database through a shared read-only mapping of the file, so every page a
// scan touches stays counted in our RSS until the mapping goes away: a 1 GiB
// snapshot would show as 1 GiB resident. Every reclaimEvery bytes we tell the
// kernel we no longer need the mapped pages (MADV_DONTNEED). For a read-only
// file mapping this only drops our page-table entries: the data stays in the
// page cache and a later touch maps it again, so pointers into the mapping
// that bbolt still holds remain valid.
type reclaimer struct {
	addr, length uintptr
	pending      int
}

func newReclaimer(db *bolt.DB, fileSize int64) *reclaimer {
	info := db.Info()
	page := int64(syscall.Getpagesize())
	return &reclaimer{addr: info.Data, length: uintptr((fileSize + page - 1) / page * page)}
}

// sequential tells the kernel a full scan follows. bbolt maps the file with
// MADV_RANDOM, which suits its point lookups but disables readahead: a scan
// of files not yet in the page cache then reads one 4 KiB page at a time.
// Measured on 10 snapshots of 110 MB, cold: 25.5 s with bbolt's advice,
// 2.8 s with MADV_SEQUENTIAL (MADV_WILLNEED on the whole mapping did not help).
func (r *reclaimer) sequential() {
	if r == nil || r.addr == 0 || r.length == 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, r.addr, r.length, syscall.MADV_SEQUENTIAL)
}

// read accounts for n bytes read from the mapping.
func (r *reclaimer) read(n int) {
	r.pending += n
	if r.pending >= reclaimEvery {
		r.pending = 0
		r.release()
	}
}

// release drops the mapped pages from the resident set. Errors are ignored:
// this is a hint, and the scan is correct without it.
func (r *reclaimer) release() {
	if r == nil || r.addr == 0 || r.length == 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, r.addr, r.length, syscall.MADV_DONTNEED)
}
