package snapshot

// Reading a backup dir: its layout, the sidecars, listing and checking its files.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The layout of a cluster's backup dir, as kubeasz's `ezctl backup` leaves it:
//
//	backup/snapshot_202611211205.db       one backup per run (local time, to the minute)
//	backup/snapshot_202611211205-2.db     a second backup in the same minute (ezrestore)
//	backup/snapshot.db                    a copy of the newest backup: what a restore reads by default
//	backup/<file>.json                    ezrestore's metadata sidecar of <file> (see Sidecar)
const (
	// LatestName is kubeasz's copy of the newest backup.
	LatestName = "snapshot.db"
	// nameTimeLayout is the timestamp in a backup's name (`date +%Y%m%d%H%M`).
	nameTimeLayout = "200601021504"
)

var backupNameRE = regexp.MustCompile(`^snapshot_(\d{12})(?:-(\d+))?\.db$`)

// BackupName is the name of the n-th backup taken in t's minute (n from 1).
func BackupName(t time.Time, n int) string {
	if n <= 1 {
		return "snapshot_" + t.Format(nameTimeLayout) + ".db"
	}
	return fmt.Sprintf("snapshot_%s-%d.db", t.Format(nameTimeLayout), n)
}

// BackupSeq is a backup's number within its minute (snapshot_<time>-N.db),
// 1 for the first or a name without one.
func BackupSeq(name string) int {
	if _, n, ok := BackupTime(name); ok {
		return n
	}
	return 1
}

// BackupTime is the time in a backup's name (snapshot_<YYYYmmddHHMM>[-N].db,
// also with a trailing .age), local time, and its sequence number within the
// minute; ok is false for any other name.
func BackupTime(name string) (t time.Time, seq int, ok bool) {
	return parseBackupName(strings.TrimSuffix(name, ".age"))
}

// IsBackupName reports whether name is an ezrestore/kubeasz backup name
// (snapshot_<time>.db), so retention may remove it.
func IsBackupName(name string) bool { return backupNameRE.MatchString(name) }

// parseBackupName returns the time in a backup's name (local time, like
// kubeasz writes it) and its sequence number within the minute.
func parseBackupName(name string) (t time.Time, seq int, ok bool) {
	m := backupNameRE.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, 0, false
	}
	t, err := time.ParseInLocation(nameTimeLayout, m[1], time.Local)
	if err != nil {
		return time.Time{}, 0, false
	}
	seq = 1
	if m[2] != "" {
		seq, _ = strconv.Atoi(m[2])
	}
	return t, seq, true
}

// Sidecar is the metadata ezrestore writes beside each backup it takes, as
// <backup file>.json (mode 0600). It records where and when the snapshot was
// taken, which the file itself does not say.
type Sidecar struct {
	SourceHost string `json:"source_host"`
	// SourcePath is the file on SourceHost it is a copy of, for a copy of
	// a member's db (member/snap/db); empty for a backup etcd took.
	SourcePath  string    `json:"source_path,omitempty"`
	EtcdVersion string    `json:"etcd_version"`
	Revision    int64     `json:"revision"`
	Keys        int       `json:"keys"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	Time        time.Time `json:"time"`
	// Cluster is the kubeasz cluster name.
	Cluster string `json:"cluster,omitempty"`
	// CopyOf is set on snapshot.db's sidecar: the backup it copies.
	CopyOf string `json:"copy_of,omitempty"`
	// The offsite copy (set on the sidecar stored beside it): the object's
	// name, the size and sha256 of the stored bytes (encrypted ones when
	// encrypted), which a download is checked against, and the age
	// recipients (public keys) it was encrypted to.
	Object        string   `json:"object,omitempty"`
	ObjectSize    int64    `json:"object_size,omitempty"`
	ObjectSHA256  string   `json:"object_sha256,omitempty"`
	AgeRecipients []string `json:"age_recipients,omitempty"`
	// The rebuild kit stored with the offsite copy (the cluster dir's
	// inventory, config, certificates and recorded host keys, encrypted):
	// its object name, and the size and sha256 of the stored bytes.
	Kit       string `json:"kit,omitempty"`
	KitSize   int64  `json:"kit_size,omitempty"`
	KitSHA256 string `json:"kit_sha256,omitempty"`
}

// SidecarPath is where the sidecar of snapshot file db lives.
func SidecarPath(db string) string { return db + ".json" }

// ReadSidecar reads db's sidecar; it returns nil and no error when there is none.
func ReadSidecar(db string) (*Sidecar, error) {
	data, err := os.ReadFile(SidecarPath(db))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Sidecar
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", SidecarPath(db), err)
	}
	return &s, nil
}

// Integrity values of an Entry.
const (
	IntegrityOK              = "ok"               // the sha256 trailer matches
	IntegrityNoTrailer       = "no trailer"       // readable, but nothing to verify against (member/snap/db copy)
	IntegrityHashMismatch    = "hash mismatch"    // the trailer does not match: the file is damaged
	IntegritySidecarMismatch = "sidecar mismatch" // the file's sha256 is not the one recorded when it was taken
	integrityUnreadable      = "unreadable: "     // followed by the reason
)

// Entry is one snapshot file of a backup dir.
type Entry struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Time is when the backup was taken: from its sidecar, else its name,
	// else the file's modification time.
	Time     time.Time `json:"time"`
	Size     int64     `json:"size"`
	Revision int64     `json:"revision"`
	// Keys is the count of live keys, -1 when the file could not be read.
	Keys      int    `json:"keys"`
	SHA256    string `json:"sha256"`
	Integrity string `json:"integrity"`
	// CopyOf names the backup that snapshot.db is a copy of, when known.
	CopyOf string   `json:"copy_of,omitempty"`
	Meta   *Sidecar `json:"meta,omitempty"`

	seq int // order within one minute
}

// Intact reports whether the entry can be restored from: readable, and not
// contradicted by its trailer or its sidecar.
func (e *Entry) Intact() bool {
	return e.Integrity == IntegrityOK || e.Integrity == IntegrityNoTrailer
}

// Damaged returns the entries that cannot be restored from.
func Damaged(entries []Entry) []Entry {
	var out []Entry
	for _, e := range entries {
		if !e.Intact() {
			out = append(out, e)
		}
	}
	return out
}

// Source says where e's data comes from: the backup it copies, else the host
// (and etcd version) its sidecar names; "" when nothing says.
func (e *Entry) Source() string {
	switch {
	case e.CopyOf != "":
		return "copy of " + e.CopyOf
	case e.Meta == nil || e.Meta.SourceHost == "":
		return ""
	case e.Meta.EtcdVersion != "":
		return e.Meta.SourceHost + " (etcd " + e.Meta.EtcdVersion + ")"
	}
	return e.Meta.SourceHost
}

// List finds the snapshot files of dir (every *.db) with their time, newest
// first, without reading them: Integrity, SHA256, Revision are left empty and
// Keys is -1. snapshot.db takes the time of the backup its sidecar says it copies.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".db") || strings.HasPrefix(name, ".") {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // pruned while we listed
			}
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		e, err := entryOf(filepath.Join(dir, name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, *e)
	}
	for i := range out {
		if out[i].Name == LatestName && out[i].CopyOf != "" {
			for _, o := range out {
				if o.Name == out[i].CopyOf {
					out[i].Time = o.Time
				}
			}
		}
	}
	sortEntries(out)
	return out, nil
}

// sortEntries puts the newest first; snapshot.db right before the backup it copies.
func sortEntries(out []Entry) {
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.After(b.Time)
		}
		if (a.Name == LatestName) != (b.Name == LatestName) {
			return a.Name == LatestName // a copy is never older than its source
		}
		if a.seq != b.seq {
			return a.seq > b.seq
		}
		return a.Name > b.Name
	})
}

// check reads e's file: digest, trailer, revision, and the key count (from
// the sidecar when the file is the one it describes, else by a scan when
// withKeys is set).
func (e *Entry) check(withKeys bool) {
	hasTrailer, ok, sum, err := CheckTrailer(e.Path)
	if err != nil {
		e.Integrity = integrityUnreadable + err.Error()
		return
	}
	e.SHA256 = sum
	switch {
	case hasTrailer && !ok:
		e.Integrity = IntegrityHashMismatch
	case e.Meta != nil && e.Meta.SHA256 != "" && !strings.EqualFold(e.Meta.SHA256, sum):
		e.Integrity = IntegritySidecarMismatch
	case hasTrailer:
		e.Integrity = IntegrityOK
	default:
		e.Integrity = IntegrityNoTrailer
	}
	sidecarTrusted := e.Meta != nil && strings.EqualFold(e.Meta.SHA256, sum)
	if sidecarTrusted || !withKeys {
		rev, err := Revision(e.Path)
		if err != nil {
			e.Integrity = integrityUnreadable + err.Error()
			return
		}
		e.Revision = rev
		if sidecarTrusted {
			e.Keys = e.Meta.Keys
		}
		return
	}
	info, err := Inspect(e.Path)
	if err != nil {
		e.Integrity = integrityUnreadable + err.Error()
		return
	}
	e.Revision, e.Keys = info.Revision, info.Keys
}

// Catalog lists and verifies the snapshot files of a backup dir, newest
// first. Every file is read in full (its digest); files without a trusted
// sidecar are also scanned for their key count. A damaged file is an entry
// with its Integrity saying what is wrong, not an error.
func Catalog(backupDir string) ([]Entry, error) {
	entries, err := List(backupDir)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		entries[i].check(true)
	}
	// Name the backup snapshot.db copies when its sidecar does not, and give
	// the copy that backup's time: what matters is when the data was taken.
	for i := range entries {
		e := &entries[i]
		if e.Name != LatestName || e.SHA256 == "" {
			continue
		}
		for _, o := range entries {
			if o.Name != LatestName && (o.Name == e.CopyOf || e.CopyOf == "" && o.SHA256 == e.SHA256) {
				e.CopyOf, e.Time = o.Name, o.Time
				break
			}
		}
	}
	sortEntries(entries)
	return entries, nil
}

// entryOf describes one snapshot file as List would, without reading it.
func entryOf(path string) (*Entry, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	e := &Entry{Name: name, Path: path, Size: fi.Size(), Time: fi.ModTime(), Keys: -1, seq: 1}
	if t, seq, ok := parseBackupName(name); ok {
		e.Time, e.seq = t, seq
	}
	if side, err := ReadSidecar(path); err == nil && side != nil {
		e.Meta = side
		if !side.Time.IsZero() {
			e.Time = side.Time
		}
		if name == LatestName {
			e.CopyOf = side.CopyOf
		}
	}
	return e, nil
}

// FormatTime is how backup times are shown: local time to the minute, with the zone.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "unknown time"
	}
	return t.Local().Format("2006-01-02 15:04 MST")
}
