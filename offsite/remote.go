package offsite

// Reading offsite copies back: listing a prefix, choosing one (a name,
// latest, before:<time>), downloading it into a private temp file, checked
// against its sidecar and decrypted, so it can be read like a local file.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/seal"
	"github.com/ezrestore/ezrestore/snapshot"
)

// RemoteEntry is one snapshot object of an offsite prefix.
type RemoteEntry struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Time is when the backup was taken: its sidecar's time, else its
	// name's, else when it was stored.
	Time time.Time `json:"time"`
	// Size is the stored object's size (encrypted bytes when encrypted).
	Size      int64 `json:"size"`
	Encrypted bool  `json:"encrypted"`
	// Meta is the sidecar stored beside it; nil when there is none.
	Meta *snapshot.Sidecar `json:"meta,omitempty"`
	// Error says why the sidecar could not be read.
	Error string `json:"error,omitempty"`

	// Kit is the URL of the rebuild kit stored with it ("" : none).
	Kit string `json:"kit,omitempty"`

	key, sidecar, kit string
	stored            time.Time
}

// Key is the object's key in its bucket.
func (e *RemoteEntry) Key() string { return e.key }

// KitKey is the key of the rebuild kit stored with it ("" : none).
func (e *RemoteEntry) KitKey() string { return e.kit }

// Delete removes a listed snapshot object, its rebuild kit and its
// sidecar: the object first, since a sidecar left alone is harmless while
// an object without its sidecar could not be checked on download; the kit
// goes with its snapshot (retention keeps or removes them together).
func (r *Remote) Delete(ctx context.Context, e RemoteEntry) error {
	if err := r.Store.Delete(ctx, e.key); err != nil {
		return err
	}
	if e.kit != "" {
		if err := r.Store.Delete(ctx, e.kit); err != nil {
			return err
		}
	}
	if e.sidecar != "" {
		return r.Store.Delete(ctx, e.sidecar)
	}
	return nil
}

// Remote is an opened offsite location, for reading.
type Remote struct {
	Loc   Location
	Store *Store
}

// OpenRemote parses an s3:// URL (a prefix, or a prefix and a snapshot
// name or selector) and opens its store. It does not contact the store.
func OpenRemote(ctx context.Context, url string, o Options) (*Remote, error) {
	loc, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	st, err := OpenURL(ctx, loc, o)
	if err != nil {
		return nil, err
	}
	return &Remote{Loc: loc, Store: st}, nil
}

// List returns the snapshot objects of the prefix, newest first, each with
// its sidecar when withMeta (one small GET each).
func (r *Remote) List(ctx context.Context, withMeta bool) ([]RemoteEntry, error) {
	listed, err := r.Store.List(ctx, r.Loc.Prefix)
	if err != nil {
		return nil, err
	}
	out := make([]RemoteEntry, 0, len(listed))
	for _, l := range listed {
		e := RemoteEntry{Name: l.Name, URL: r.Store.URL(l.Key), Size: l.Size, Encrypted: l.Encrypted,
			key: l.Key, sidecar: l.Sidecar, kit: l.Kit, stored: l.Modified, Time: l.Modified}
		if l.Kit != "" {
			e.Kit = r.Store.URL(l.Kit)
		}
		if t, _, ok := snapshot.BackupTime(l.Name); ok {
			e.Time = t
		}
		if withMeta && l.Sidecar != "" {
			if m, err := r.sidecar(ctx, l.Sidecar); err != nil {
				e.Error = err.Error()
			} else {
				e.Meta = m
				if !m.Time.IsZero() {
					e.Time = m.Time
				}
			}
		}
		out = append(out, e)
	}
	sortRemote(out)
	return out, nil
}

// sortRemote puts the newest first: by time, then by the sequence within
// one minute, then by when the store got it.
func sortRemote(out []RemoteEntry) {
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.After(b.Time)
		}
		if snapshot.BackupSeq(a.Name) != snapshot.BackupSeq(b.Name) {
			return snapshot.BackupSeq(a.Name) > snapshot.BackupSeq(b.Name)
		}
		if !a.stored.Equal(b.stored) {
			return a.stored.After(b.stored)
		}
		return a.Name > b.Name
	})
}

func (r *Remote) sidecar(ctx context.Context, key string) (*snapshot.Sidecar, error) {
	data, err := r.Store.GetBytes(ctx, key, sidecarLimit)
	if err != nil {
		return nil, err
	}
	var s snapshot.Sidecar
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Store.URL(key), err)
	}
	return &s, nil
}

// Resolve chooses the object spec names among entries (newest first):
// "" or "latest" the newest, "before:<RFC3339>" the newest taken strictly
// before that time, else the object of that name (NAME or NAME.age). how
// explains the choice.
func Resolve(entries []RemoteEntry, prefix, spec string) (*RemoteEntry, string, error) {
	if len(entries) == 0 {
		return nil, "", fmt.Errorf("no snapshots under %s (see `ezrestore snapshots %s`)", prefix, prefix)
	}
	switch {
	case spec == "" || spec == "latest":
		e := entries[0]
		return &e, fmt.Sprintf("latest in the store, %s (%s)", e.Name, snapshot.FormatTime(e.Time)), nil
	case strings.HasPrefix(spec, "before:"):
		t, err := time.Parse(time.RFC3339, strings.TrimPrefix(spec, "before:"))
		if err != nil {
			return nil, "", fmt.Errorf("%q: the time must be RFC 3339, like before:2026-11-21T12:00:00Z: %w", spec, err)
		}
		for _, e := range entries {
			if e.Time.Before(t) {
				return &e, fmt.Sprintf("newest in the store before %s, %s (%s)", snapshot.FormatTime(t), e.Name, snapshot.FormatTime(e.Time)), nil
			}
		}
		return nil, "", fmt.Errorf("no snapshot under %s was taken before %s", prefix, snapshot.FormatTime(t))
	}
	for _, want := range []string{spec, spec + seal.Suffix} {
		for _, e := range entries {
			if e.Name == want {
				return &e, fmt.Sprintf("%s (%s) named on the command line", e.Name, snapshot.FormatTime(e.Time)), nil
			}
		}
	}
	return nil, "", fmt.Errorf("no snapshot %q under %s (see `ezrestore snapshots %s`)", spec, prefix, prefix)
}

// FetchOptions say how to read an offsite snapshot.
type FetchOptions struct {
	// Identity is the --age-identity file, needed for an encrypted object.
	Identity string
	// Store overrides the AWS resolution of the store.
	Store Options
	// Dir is where the private temp dir is made (default os.TempDir()).
	Dir string
}

// Fetched is an offsite snapshot downloaded into a private temp dir (0700,
// the file 0600), with its sidecar beside it. Remove it when done.
type Fetched struct {
	// Path is the plaintext snapshot file.
	Path string
	// URL is the object it came from, Entry its listing.
	URL   string
	Entry RemoteEntry
	// How says how it was chosen and what was checked, for a plan.
	How string
	dl  *Download
}

// Remove deletes the temp dir and everything in it.
func (f *Fetched) Remove() error {
	if f == nil {
		return nil
	}
	return f.dl.Remove()
}

// Fetch resolves url (s3://BUCKET/PREFIX[/NAME|latest|before:<time>]) and
// downloads the snapshot it names. An encrypted object is refused before
// the download when the identity is missing or cannot open it (its header
// is read with a ranged GET). The stored bytes are checked against the
// sidecar's object size and sha256 and, when encrypted, age authenticates
// every chunk: a damaged object is an error and nothing is left behind.
func Fetch(ctx context.Context, url string, o FetchOptions) (*Fetched, error) {
	r, err := OpenRemote(ctx, url, o.Store)
	if err != nil {
		return nil, err
	}
	e, how, err := r.Pick(ctx, r.Loc.Name)
	if err != nil {
		return nil, err
	}
	return r.Fetch(ctx, *e, how, o)
}

// PrefixURL is the s3:// prefix r lists, without a snapshot name.
func (r *Remote) PrefixURL() string {
	return Location{Bucket: r.Loc.Bucket, Prefix: r.Loc.Prefix}.String()
}

// Pick lists r's prefix and chooses the snapshot spec names (see Resolve).
func (r *Remote) Pick(ctx context.Context, spec string) (*RemoteEntry, string, error) {
	entries, err := r.List(ctx, false)
	if err != nil {
		return nil, "", err
	}
	return Resolve(entries, r.PrefixURL(), spec)
}

// Fetch downloads entry e (see the package-level Fetch).
func (r *Remote) Fetch(ctx context.Context, e RemoteEntry, how string, o FetchOptions) (*Fetched, error) {
	var ids *seal.Identities
	if e.Encrypted {
		if o.Identity == "" {
			return nil, fmt.Errorf("%s is encrypted: give the age identity it was encrypted to with --age-identity FILE", e.URL)
		}
		var err error
		if ids, err = seal.LoadIdentities(o.Identity); err != nil {
			return nil, err
		}
		head, err := r.Store.Peek(ctx, e.key, seal.HeaderPeek)
		if err != nil {
			return nil, err
		}
		if err := seal.CheckHeader(bytes.NewReader(head), ids); err != nil {
			return nil, fmt.Errorf("%s: %w", e.URL, err)
		}
	}
	var want Object
	checked := "no sidecar in the store: the download is checked by the snapshot's own sha256 trailer only"
	if e.sidecar != "" {
		m, err := r.sidecar(ctx, e.sidecar)
		if err != nil {
			return nil, fmt.Errorf("the sidecar of %s: %w", e.URL, err)
		}
		e.Meta = m
		if !m.Time.IsZero() {
			e.Time = m.Time
		}
		want = Object{Size: m.ObjectSize, SHA256: m.ObjectSHA256}
		if want.SHA256 != "" {
			checked = "stored bytes match the sidecar's sha256"
		}
	}
	gopt := GetOptions{Dir: o.Dir, Want: want}
	if ids != nil {
		gopt.Decode = func(src io.Reader) (io.Reader, error) { return seal.Decrypt(src, ids) }
		checked += ", decrypted with " + ids.Path
	}
	dl, err := r.Store.Get(ctx, e.key, gopt)
	if err != nil {
		// Past the header, a failed read that is neither the store's nor
		// the disk's is age refusing a chunk: the object was altered.
		var se *Error
		var pe *fs.PathError
		if ids != nil && !errors.As(err, &se) && !errors.As(err, &pe) && ctx.Err() == nil {
			return nil, fmt.Errorf("%s: %w: it does not decrypt (%v); it was altered or cut short in the store, pick another with `ezrestore snapshots`", e.URL, ErrDamaged, err)
		}
		return nil, err
	}
	f := &Fetched{Path: dl.Path, URL: e.URL, Entry: e, dl: dl,
		How: fmt.Sprintf("%s: %s, downloaded (%s)", e.URL, how, checked)}
	if e.Meta != nil {
		// Beside the file, the sidecar lets the local checks compare the
		// plaintext's sha256 with the one recorded when it was taken.
		side := *e.Meta
		if err := snapshot.WriteSidecar(dl.Path, &side); err != nil {
			f.Remove()
			return nil, err
		}
	}
	return f, nil
}

// sidecarLimit bounds a sidecar read from the store.
const sidecarLimit = 1 << 20
