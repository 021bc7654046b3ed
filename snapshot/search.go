package snapshot

// Searching several snapshots for a key, as `ezrestore snapshot find` does.

import (
	"fmt"
	"time"
)

// Target is a snapshot file to search; Time is when its backup was taken,
// zero when unknown (a file named on the command line).
type Target struct {
	Path string
	Time time.Time
}

// BackupTargets lists the snapshot files of backupDir worth searching, newest
// first: all of them but snapshot.db when it is a known copy of a backup in
// the same list, whose keys it would only repeat. A dir without snapshots is
// an error.
func BackupTargets(backupDir string) ([]Target, error) {
	entries, err := List(backupDir)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("no snapshots in %s", backupDir)
	}
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e.Name] = true
	}
	var out []Target
	for _, e := range entries {
		if e.Name == LatestName && e.CopyOf != "" && listed[e.CopyOf] {
			continue
		}
		out = append(out, Target{Path: e.Path, Time: e.Time})
	}
	return out, nil
}

// FindResult is one file's answer to FindAll.
type FindResult struct {
	File     string     `json:"path"`
	Time     *time.Time `json:"time,omitempty"`
	Revision int64      `json:"revision,omitempty"`
	Matches  []Match    `json:"matches"`
	// Error says why the file could not be searched.
	Error string `json:"error,omitempty"`
}

// FindTally counts what FindAll saw.
type FindTally struct {
	Pattern string
	// Searched files, those holding a match, those that could not be read.
	Searched, Found, Failed int
}

// FindAll searches each target in turn for live keys matching pattern (see
// Find), hands report each file's result as soon as it is known (a search of
// many large files shows progress), and returns the tally. A file that cannot
// be read is a result with its Error, not the end of the search.
func FindAll(targets []Target, pattern string, report func(FindResult)) FindTally {
	tally := FindTally{Pattern: pattern, Searched: len(targets)}
	for _, t := range targets {
		r := FindResult{File: t.Path, Matches: []Match{}}
		if !t.Time.IsZero() {
			r.Time = &t.Time
		}
		matches, err := Find(t.Path, pattern)
		if err == nil {
			r.Matches = matches
			r.Revision, err = Revision(t.Path)
		}
		switch {
		case err != nil:
			r.Error = err.Error()
			tally.Failed++
		case len(matches) > 0:
			tally.Found++
		}
		report(r)
	}
	return tally
}

// Status is the exit status a search implies, with the reason when it is not
// StatusOK: StatusUnreadable when a file could not be read, else StatusProblem when
// no snapshot holds a match.
func (t FindTally) Status() (int, error) {
	switch {
	case t.Failed > 0:
		return StatusUnreadable, fmt.Errorf("%d of %d snapshots could not be read", t.Failed, t.Searched)
	case t.Found == 0:
		return StatusProblem, fmt.Errorf("no snapshot holds a live key matching %q", t.Pattern)
	}
	return StatusOK, nil
}
