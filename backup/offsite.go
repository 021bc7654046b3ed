package backup

// Offsite copies: each verified backup uploaded to an S3-compatible store,
// encrypted with age when recipients are given, with its sidecar beside it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/kit"
	"github.com/ezrestore/ezrestore/offsite"
	"github.com/ezrestore/ezrestore/seal"
	"github.com/ezrestore/ezrestore/snapshot"
)

// Offsite is an opened and checked offsite prefix (--to s3://BUCKET/PREFIX).
type Offsite struct {
	Loc   offsite.Location
	Store *offsite.Store
	// Recipients, when set, are the age keys each copy is encrypted to
	// before it leaves the bastion.
	Recipients *seal.Recipients
	// Kit, when set, is the cluster dir whose rebuild kit goes with each
	// copy (Take sets it for a kubeasz cluster); see kit.go.
	Kit *kit.Source
}

// OpenOffsite parses url, which names a prefix, opens its store the AWS way
// and asks the store whether the bucket is there and usable, so a backup
// that cannot go offsite fails before a snapshot is taken.
func OpenOffsite(ctx context.Context, url string, o offsite.Options, rec *seal.Recipients) (*Offsite, error) {
	loc, err := offsite.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if loc.Name != "" {
		return nil, fmt.Errorf("--to %s names a snapshot; give the prefix the backups go under (s3://%s/%s)", url, loc.Bucket, loc.Prefix)
	}
	st, err := offsite.OpenURL(ctx, loc, o)
	if err != nil {
		return nil, err
	}
	if err := st.Check(ctx); err != nil {
		what := "the store refuses or cannot be reached"
		if errors.Is(err, offsite.ErrNotFound) || errors.Is(err, offsite.ErrNoSuchBucket) {
			// A HEAD answer has no body: 404 is the bucket missing here.
			what = "no bucket " + loc.Bucket + " in the store (create it, or correct the name)"
		}
		return nil, fmt.Errorf("--to %s: %s; no snapshot was taken: %w", url, what, err)
	}
	return &Offsite{Loc: loc, Store: st, Recipients: rec}, nil
}

// Uploaded is a backup's offsite copy.
type Uploaded struct {
	// URL is the object's s3:// URL; SidecarURL its sidecar's.
	URL, SidecarURL string
	// Object is what the store holds, proven by reading it back.
	Object offsite.Object
	// Sidecar is the sidecar stored beside it.
	Sidecar   snapshot.Sidecar
	Encrypted bool
	// KitURL is the rebuild kit stored with it; KitSkipped says why none
	// was (no recipients to encrypt it to, an -i inventory).
	KitURL     string   `json:"kit_url,omitempty"`
	KitFiles   []string `json:"kit_files,omitempty"`
	KitSkipped string   `json:"kit_skipped,omitempty"`
}

// freeKey is the key for name under the prefix, or, when the store already
// holds that name (another bastion, or a backup dir emptied since), the
// first free snapshot_<time>-N name of the same minute: a copy never
// replaces one already stored.
func (o *Offsite) freeKey(ctx context.Context, name string, taken time.Time) (string, error) {
	suffix := ""
	if strings.HasSuffix(name, seal.Suffix) {
		suffix = seal.Suffix
	}
	t, n, ok := snapshot.BackupTime(name)
	if !ok {
		t, n = taken.Local(), 1
	}
	for i := 0; i < 1000; i++ {
		key := o.Loc.Key(name)
		_, err := o.Store.Head(ctx, key)
		if errors.Is(err, offsite.ErrNotFound) {
			return key, nil
		}
		if err != nil {
			return "", err
		}
		n++
		name = snapshot.BackupName(t, n) + suffix
	}
	return "", fmt.Errorf("%s: too many backups in one minute", o.Loc)
}

// Upload copies the filed backup at path (whose sidecar is side) to the
// prefix: the file, encrypted when recipients are set, streamed into the
// store and read back, then the sidecar with the stored object's size and
// sha256 (what a download is checked against).
func (o *Offsite) Upload(ctx context.Context, path string, side snapshot.Sidecar) (*Uploaded, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	var src io.Reader = f
	if o.Recipients.Len() > 0 {
		if src, err = seal.Encrypt(f, o.Recipients); err != nil {
			return nil, err
		}
		name += seal.Suffix
		side.AgeRecipients = o.Recipients.Names
	}
	key, err := o.freeKey(ctx, name, side.Time)
	if err != nil {
		return nil, err
	}
	name = filepath.Base(key)
	obj, err := o.Store.Put(ctx, key, src, fi.Size())
	if err != nil {
		return nil, err
	}
	side.CopyOf = ""
	side.Object, side.ObjectSize, side.ObjectSHA256 = name, obj.Size, obj.SHA256
	// The kit before the sidecar: the sidecar records its sha256.
	up := &Uploaded{Object: obj, Encrypted: o.Recipients.Len() > 0}
	if err := o.uploadKit(ctx, key, &side, up); err != nil {
		return nil, fmt.Errorf("%s is stored but its rebuild kit is not (run the backup again): %w", o.Store.URL(key), err)
	}
	data, err := json.MarshalIndent(&side, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	skey := key + ".json"
	if _, err := o.Store.Put(ctx, skey, bytes.NewReader(data), int64(len(data))); err != nil {
		return nil, fmt.Errorf("%s is stored but its sidecar is not (a restore from it cannot check the download against it; run the backup again): %w", o.Store.URL(key), err)
	}
	up.URL, up.SidecarURL, up.Sidecar = o.Store.URL(key), o.Store.URL(skey), side
	return up, nil
}
