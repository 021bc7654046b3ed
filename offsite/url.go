// Package offsite keeps copies of snapshots in S3-compatible object storage:
// it parses s3:// locations, resolves credentials, region and endpoint the
// way the AWS tools do, and puts (verified), lists, gets and deletes
// objects with bounded memory whatever their size.
package offsite

import (
	"fmt"
	"path"
	"strings"
)

// Scheme prefixes every offsite location.
const Scheme = "s3://"

// IsURL reports whether s names an offsite location rather than a local path.
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// Location is a parsed s3://BUCKET/PREFIX[/NAME].
type Location struct {
	Bucket string
	// Prefix is the "directory" of the snapshots, without leading or
	// trailing slash ("" for the bucket's top).
	Prefix string
	// Name is the snapshot the location points at, "" for a prefix. It is a
	// file name (ending in .db or .db.age) or a selector such as "latest"
	// or "before:<time>" that the caller resolves against List.
	Name string
}

// ParseURL parses s3://BUCKET/PREFIX[/NAME]. The last element is a NAME when
// it is a snapshot file name (*.db, *.db.age), "latest" or "before:..."; a
// trailing slash always means a prefix.
func ParseURL(s string) (Location, error) {
	if !IsURL(s) {
		return Location{}, fmt.Errorf("%q: not an s3:// location (s3://BUCKET/PREFIX[/NAME])", s)
	}
	rest := strings.TrimPrefix(s, Scheme)
	bucket, p, _ := strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return Location{}, fmt.Errorf("%q: %w", s, err)
	}
	if strings.ContainsAny(p, "?#") || strings.Contains(p, "//") {
		return Location{}, fmt.Errorf("%q: the path may not hold '?', '#' or '//'", s)
	}
	trailing := strings.HasSuffix(p, "/")
	p = strings.Trim(p, "/")
	for _, el := range strings.Split(p, "/") {
		if el == "." || el == ".." {
			return Location{}, fmt.Errorf("%q: '.' and '..' are not allowed in a key", s)
		}
	}
	loc := Location{Bucket: bucket, Prefix: p}
	if !trailing && p != "" {
		dir, last := path.Split(p)
		if IsSnapshotName(last) || last == "latest" || strings.HasPrefix(last, "before:") {
			loc.Prefix, loc.Name = strings.TrimSuffix(dir, "/"), last
		}
	}
	return loc, nil
}

// checkBucket applies S3's bucket naming rules (3-63 of a-z 0-9 . -,
// starting and ending with a letter or digit), so a typo fails here and not
// as a signature error from the store.
func checkBucket(b string) error {
	if b == "" {
		return fmt.Errorf("no bucket")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket %q: a bucket name has 3 to 63 characters", b)
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '.' || r == '-') && i > 0 && i < len(b)-1
		if !ok {
			return fmt.Errorf("bucket %q: a bucket name is lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", b)
		}
	}
	return nil
}

// IsSnapshotName reports whether name is a snapshot object: *.db, or
// *.db.age when encrypted.
func IsSnapshotName(name string) bool {
	return strings.HasSuffix(name, ".db") || strings.HasSuffix(name, ".db.age")
}

// KitSuffix ends the name of a snapshot's rebuild kit, stored beside it:
// snapshot_<time>.db.age.kit.tar.age for snapshot_<time>.db.age. It is
// always encrypted (it holds the cluster's CA keys).
const KitSuffix = ".kit.tar.age"

// KitName is the name of the rebuild kit stored with snapshot object name:
// the whole name, so snapshot_<time>.db and snapshot_<time>.db.age of one
// minute (one stored unencrypted, one not) never share a kit.
func KitName(name string) string { return name + KitSuffix }

// Key is the object key of name under the location's prefix.
func (l Location) Key(name string) string {
	if l.Prefix == "" {
		return name
	}
	return l.Prefix + "/" + name
}

// String is the location as an s3:// URL.
func (l Location) String() string {
	s := Scheme + l.Bucket
	if l.Prefix != "" {
		s += "/" + l.Prefix
	}
	if l.Name != "" {
		s += "/" + l.Name
	}
	return s
}
