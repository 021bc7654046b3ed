package snapshot

import (
	"fmt"
	"time"
)

// CheckAge is nil when the newest verified backup of where, name taken at
// taken, is at most maxAge old at now; else one line saying why not (name
// "" : there is none). Monitoring runs it (`snapshots --max-age`), so the
// line names the backup, its age and the limit.
func CheckAge(where, name string, taken time.Time, maxAge time.Duration, now time.Time) error {
	if name == "" {
		return fmt.Errorf("%s: no verified backup at all (--max-age %s)", where, maxAge)
	}
	if age := now.Sub(taken); age > maxAge {
		return fmt.Errorf("%s: the newest verified backup, %s, is %s old (taken %s), older than --max-age %s",
			where, name, age.Round(time.Second), FormatTime(taken), maxAge)
	}
	return nil
}

// NewestVerified is the newest entry whose sha256 trailer was checked
// (IntegrityOK), or nil. snapshot.db, a copy, counts as the backup it copies.
func NewestVerified(entries []Entry) *Entry {
	var best *Entry
	for i := range entries {
		e := &entries[i]
		if e.Integrity != IntegrityOK {
			continue
		}
		// On a tie the backup itself, not snapshot.db that copies it.
		if best == nil || e.Time.After(best.Time) || e.Time.Equal(best.Time) && best.CopyOf != "" && e.CopyOf == "" {
			best = e
		}
	}
	return best
}
