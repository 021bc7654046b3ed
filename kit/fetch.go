package kit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/ezrestore/ezrestore/offsite"
	"github.com/ezrestore/ezrestore/seal"
	"github.com/ezrestore/ezrestore/snapshot"
)

// FetchOptions say which kit to fetch and where to put it.
type FetchOptions struct {
	// Base is the base dir the cluster dir is made under (<Base>/clusters/<name>).
	Base string
	// Name names the cluster dir; "" : the name the kit was taken under.
	Name string
	// Identity is the age identity file the kit was encrypted to.
	Identity string
	// At, when set, picks the newest kit taken at or before it.
	At time.Time
	// Store overrides the AWS resolution of the store.
	Store offsite.Options
}

// Fetched is a kit unpacked into a fresh cluster dir, with the snapshot
// it was stored with.
type Fetched struct {
	*Unpacked
	Cluster string `json:"cluster"`
	// KitURL is the kit's object; Snapshot the snapshot stored with it.
	KitURL   string              `json:"kit_url"`
	Snapshot offsite.RemoteEntry `json:"snapshot"`
}

var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Fetch finds the newest rebuild kit under the prefix url (at or before
// o.At), downloads it, checks it against its snapshot's sidecar, decrypts
// it and unpacks it into <Base>/clusters/<name>/, which must not exist.
func Fetch(ctx context.Context, url string, o FetchOptions) (*Fetched, error) {
	if o.Identity == "" {
		return nil, errors.New("the rebuild kit is encrypted: give the age identity it was encrypted to with --age-identity FILE")
	}
	ids, err := seal.LoadIdentities(o.Identity)
	if err != nil {
		return nil, err
	}
	r, err := offsite.OpenRemote(ctx, url, o.Store)
	if err != nil {
		return nil, err
	}
	if r.Loc.Name != "" {
		return nil, fmt.Errorf("%s names a snapshot: give the prefix (%s), and --at TIME for an older kit", url, r.PrefixURL())
	}
	entries, err := r.List(ctx, true)
	if err != nil {
		return nil, err
	}
	var e *offsite.RemoteEntry
	for i := range entries {
		if entries[i].KitKey() != "" && (o.At.IsZero() || !entries[i].Time.After(o.At)) {
			e = &entries[i]
			break
		}
	}
	if e == nil {
		when := ""
		if !o.At.IsZero() {
			when = " taken at or before " + snapshot.FormatTime(o.At)
		}
		return nil, fmt.Errorf("no rebuild kit under %s%s (%d snapshots there; kits are stored by `ezrestore backup --to ... --age-recipient ...` from a cluster dir)", r.PrefixURL(), when, len(entries))
	}
	name := o.Name
	if name == "" && e.Meta != nil {
		name = e.Meta.Cluster
	}
	if name == "" {
		return nil, fmt.Errorf("%s does not say which cluster it is: pass --name NAME", e.Kit)
	}
	if !clusterNameRE.MatchString(name) {
		return nil, fmt.Errorf("cluster name %q: use letters, digits, '.', '_' and '-'", name)
	}
	dest, err := filepath.Abs(filepath.Join(o.Base, "clusters", name))
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(dest); err == nil {
		return nil, fmt.Errorf("%s exists: clusters fetch never overwrites a cluster dir; move it aside or pick another --name", dest)
	}
	base, err := filepath.Abs(o.Base)
	if err != nil {
		return nil, err
	}
	want := offsite.Object{}
	if e.Meta != nil {
		want = offsite.Object{Size: e.Meta.KitSize, SHA256: e.Meta.KitSHA256}
	}
	// Decrypting authenticates every chunk; the sidecar's sha256, when
	// there is one, also ties the kit to the snapshot it was stored with.
	dl, err := r.Store.Get(ctx, e.KitKey(), offsite.GetOptions{Want: want, Name: "kit.tar",
		Decode: func(src io.Reader) (io.Reader, error) { return seal.Decrypt(src, ids) }})
	if err != nil {
		return nil, fmt.Errorf("the rebuild kit %s: %w", e.Kit, err)
	}
	defer dl.Remove()
	f, err := os.Open(dl.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u, err := Unpack(f, dest, base)
	if err != nil {
		return nil, err
	}
	return &Fetched{Unpacked: u, Cluster: name, KitURL: e.Kit, Snapshot: *e}, nil
}
