package offsite

import (
	"context"
	"path"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Listed is one snapshot object under a prefix.
type Listed struct {
	Object
	// Name is the key's last element (snapshot_<time>.db[.age]).
	Name string
	// Encrypted is true for *.age objects.
	Encrypted bool
	// Sidecar is the key of its .json sidecar ("" when there is none):
	// NAME.json, or for NAME.db.age also NAME.db.json.
	Sidecar string
	// Kit is the key of its rebuild kit ("" when there is none).
	Kit string
}

// List returns the snapshot objects directly under prefix (not in deeper
// "directories"), newest first by the store's modification time, with the
// keys of their sidecars.
func (s *Store) List(ctx context.Context, prefix string) ([]Listed, error) {
	p := strings.Trim(prefix, "/")
	if p != "" {
		p += "/"
	}
	all := map[string]Object{}
	pg := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: &p, Delimiter: aws.String("/")})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("list", p, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			all[k] = Object{Key: k, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}
		}
	}
	var out []Listed
	for k, o := range all {
		name := path.Base(k)
		if !IsSnapshotName(name) {
			continue
		}
		l := Listed{Object: o, Name: name, Encrypted: strings.HasSuffix(name, ".age")}
		if kit := path.Join(path.Dir(k), KitName(name)); all[kit].Key != "" {
			l.Kit = kit
		}
		for _, sc := range []string{k + ".json", strings.TrimSuffix(k, ".age") + ".json"} {
			if _, ok := all[sc]; ok {
				l.Sidecar = sc
				break
			}
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Modified.Equal(out[j].Modified) {
			return out[i].Modified.After(out[j].Modified)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}
