package snapshot

// Writing a backup dir: filing a new backup, its sidecar, snapshot.db, pruning.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ezrestore/ezrestore/internal/atomicfile"
)

// WriteSidecar writes db's sidecar atomically with mode 0600.
func WriteSidecar(db string, s *Sidecar) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(SidecarPath(db), append(data, '\n'), 0o600)
}

// AddBackup files the verified snapshot tmp (in backupDir) under the first free
// name for time t and returns its path. Names are taken with a hard link, which
// fails rather than replaces, so two backups in one minute never overwrite each
// other.
func AddBackup(backupDir, tmp string, t time.Time) (string, error) {
	for n := 1; n < 1000; n++ {
		p := filepath.Join(backupDir, BackupName(t, n))
		err := os.Link(tmp, p)
		if err == nil {
			return p, os.Remove(tmp)
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: too many backups in minute %s", backupDir, t.Format(nameTimeLayout))
}

// RefreshLatest makes snapshot.db a copy of the backup src, with a sidecar
// naming src. The copy is written beside it and renamed into place, so a
// restore reading snapshot.db never sees half a file.
func RefreshLatest(backupDir, src string, side *Sidecar) error {
	dst := filepath.Join(backupDir, LatestName)
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := atomicfile.Copy(dst, in, 0o600); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if side == nil {
		_ = os.Remove(SidecarPath(dst))
		return nil
	}
	s := *side
	s.CopyOf = filepath.Base(src)
	return WriteSidecar(dst, &s)
}

// Prune removes the oldest ezrestore/kubeasz-named backups (snapshot_<time>.db)
// of backupDir beyond the newest keep, with their sidecars. It never removes
// the newest backup, the one snapshot.db copies, nor any file named otherwise.
func Prune(backupDir string, keep int) (removed []string, err error) {
	if keep < 1 {
		return nil, fmt.Errorf("keep must be at least 1, got %d", keep)
	}
	entries, err := List(backupDir)
	if err != nil {
		return nil, err
	}
	var backups []Entry
	var latest *Entry
	for i, e := range entries {
		if e.Name == LatestName {
			latest = &entries[i]
		} else if backupNameRE.MatchString(e.Name) {
			backups = append(backups, e)
		}
	}
	if len(backups) <= keep {
		return nil, nil
	}
	// The backup snapshot.db copies: its sidecar says so, else compare contents
	// (only files of the same size need hashing).
	protected := ""
	if latest != nil {
		protected = latest.CopyOf
		if protected == "" {
			latestSum := ""
			for _, b := range backups[keep:] {
				if b.Size != latest.Size {
					continue
				}
				if latestSum == "" {
					if latestSum, err = FileSHA256(latest.Path); err != nil {
						return nil, fmt.Errorf("cannot tell which backup %s copies, pruning nothing: %w", LatestName, err)
					}
				}
				sum, err := FileSHA256(b.Path)
				if err != nil {
					return nil, err
				}
				if sum == latestSum {
					protected = b.Name
					break
				}
			}
		}
	}
	for _, b := range backups[keep:] {
		if b.Name == protected {
			continue
		}
		if err := os.Remove(b.Path); err != nil {
			return removed, err
		}
		_ = os.Remove(SidecarPath(b.Path))
		removed = append(removed, b.Name)
	}
	return removed, nil
}
