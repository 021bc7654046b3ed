package snapshot

// Choosing the snapshot a restore reads.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ResolveChecked turns a restore's --snapshot value into a file of backupDir:
//
//	""                  snapshot.db, kubeasz's copy of the newest backup
//	"latest"            the newest intact backup
//	"before:<RFC3339>"  the newest intact backup taken strictly before that time
//	a file name         that file in backupDir (else relative to the working dir)
//	a path              that file
//
// It returns the chosen file's entry with its digest, trailer check and
// revision, so a caller that needs them (a restore's preflight) does not read
// a file of gigabytes a second time; how explains the choice in words for the
// plan. "latest" and "before:" read candidate files (newest first) until one
// is intact, and say which damaged ones they passed over. A file chosen any
// other way is checked too, and returned even when damaged, with its
// Integrity saying so.
func ResolveChecked(backupDir, spec string) (*Entry, string, error) {
	path, how, e, err := resolve(backupDir, spec)
	if err != nil {
		return nil, "", err
	}
	if e == nil {
		if e, err = entryOf(path); err != nil {
			return nil, "", err
		}
		e.check(false)
	}
	return e, how, nil
}

// resolve chooses the file; picked is the entry it already checked, if any.
func resolve(backupDir, spec string) (path, how string, picked *Entry, err error) {
	switch {
	case spec == "":
		p := filepath.Join(backupDir, LatestName)
		if _, err := os.Stat(p); err != nil {
			return "", "", nil, fmt.Errorf("no %s in %s (take a backup, or name a snapshot file): %w", LatestName, backupDir, err)
		}
		how = LatestName + " (kubeasz's copy of the newest backup)"
		if side, err := ReadSidecar(p); err == nil && side != nil && side.CopyOf != "" {
			how = fmt.Sprintf("%s, a copy of %s (%s)", LatestName, side.CopyOf, FormatTime(side.Time))
		}
		return p, how, nil, nil
	case spec == "latest":
		return pick(backupDir, "latest backup", func(Entry) bool { return true })
	case strings.HasPrefix(spec, "before:"):
		t, err := time.Parse(time.RFC3339, strings.TrimPrefix(spec, "before:"))
		if err != nil {
			return "", "", nil, fmt.Errorf("--snapshot %q: the time must be RFC 3339, like before:2026-11-21T12:00:00Z: %w", spec, err)
		}
		return pick(backupDir, "newest backup before "+FormatTime(t), func(e Entry) bool { return e.Time.Before(t) })
	}
	candidates := []string{spec}
	if !strings.ContainsRune(spec, filepath.Separator) {
		candidates = []string{filepath.Join(backupDir, spec), spec}
	}
	for _, c := range candidates {
		fi, err := os.Stat(c)
		if err == nil && fi.Mode().IsRegular() {
			abs, err := filepath.Abs(c)
			if err != nil {
				return "", "", nil, err
			}
			return abs, "file " + abs + " named on the command line", nil, nil
		}
	}
	return "", "", nil, fmt.Errorf("snapshot %q: no such file in %s or the working dir (see `ezrestore snapshots`)", spec, backupDir)
}

// pick returns the newest intact backup (snapshot.db aside, it is a copy) that keep accepts.
func pick(backupDir, what string, keep func(Entry) bool) (string, string, *Entry, error) {
	entries, err := List(backupDir)
	if err != nil {
		return "", "", nil, fmt.Errorf("%s: %w", what, err)
	}
	var skipped []string
	considered := 0
	for _, e := range entries {
		if e.Name == LatestName && len(entries) > 1 || !keep(e) {
			continue
		}
		considered++
		e.check(false)
		if !e.Intact() {
			skipped = append(skipped, e.Name+" ("+e.Integrity+")")
			continue
		}
		how := fmt.Sprintf("%s %s (%s, revision %d)", what, e.Name, FormatTime(e.Time), e.Revision)
		if e.Integrity == IntegrityNoTrailer {
			how += ", no sha256 trailer"
		}
		if len(skipped) > 0 {
			how += "; passed over damaged " + strings.Join(skipped, ", ")
		}
		return e.Path, how, &e, nil
	}
	if considered == 0 {
		return "", "", nil, fmt.Errorf("no %s in %s", what, backupDir)
	}
	return "", "", nil, fmt.Errorf("no intact %s in %s: %s", what, backupDir, strings.Join(skipped, ", "))
}

// Resolve chooses the file a --snapshot value names, as ResolveChecked does,
// for readers that look inside it (snapshot get, ls, diff): a file named or
// snapshot.db is not read in full to check it first ("latest" and "before:"
// still pass over damaged backups, which is how they choose).
func Resolve(backupDir, spec string) (path, how string, err error) {
	path, how, _, err = resolve(backupDir, spec)
	return path, how, err
}
