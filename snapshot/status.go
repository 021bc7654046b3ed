package snapshot

// What the offline snapshot commands' results mean as an exit status.

import "fmt"

// Exit statuses of the offline snapshot commands.
const (
	StatusOK = 0
	// StatusProblem is a damaged file (inspect, snapshots), or no match (find).
	StatusProblem = 1
	// StatusUnreadable is find's: a file could not be searched.
	StatusUnreadable = 2
)

// InspectStatus is the exit status of Inspect's result: StatusProblem when the
// file could not be read as an etcd database or is damaged.
func InspectStatus(info *Info, err error) (int, error) {
	if err != nil {
		return StatusProblem, err
	}
	if err := info.Damage(); err != nil {
		return StatusProblem, err
	}
	return StatusOK, nil
}

// CatalogStatus is the exit status of a listing of backupDir: StatusProblem when
// some entry cannot be restored from.
func CatalogStatus(backupDir string, entries []Entry) (int, error) {
	if bad := len(Damaged(entries)); bad > 0 {
		return StatusProblem, fmt.Errorf("%d of %d snapshots in %s are damaged", bad, len(entries), backupDir)
	}
	return StatusOK, nil
}
