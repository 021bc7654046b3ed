package restore

// A --snapshot in object storage (s3://BUCKET/PREFIX[/NAME|latest|before:<time>]):
// downloaded into a private temp file, checked and decrypted before anything
// else, then planned exactly as a local file.

import (
	"context"

	"github.com/ezrestore/ezrestore/offsite"
)

// fetchSnapshot downloads an offsite --snapshot and points req at the
// local copy; it returns nil for a local one. A missing or wrong
// identity, an unknown name or a damaged object is an error here, before
// any host is contacted.
func fetchSnapshot(ctx context.Context, req *Request) (*offsite.Fetched, error) {
	if !offsite.IsURL(req.Snapshot) {
		return nil, nil
	}
	f, err := offsite.Fetch(ctx, req.Snapshot, offsite.FetchOptions{Identity: req.AgeIdentity})
	if err != nil {
		return nil, err
	}
	req.Snapshot = f.Path
	return f, nil
}

// describeFetched says in the plan where the snapshot came from and what
// was checked, rather than naming the temp file only.
func describeFetched(s *Session, f *offsite.Fetched) {
	if f == nil {
		return
	}
	how := f.How + "; read from " + f.Path
	s.Restore.Snapshot.How = how
	if s.Plan != nil {
		s.Plan.Snapshot.How = how
	}
}
