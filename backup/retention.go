package backup

// Retention by tiers (snapshot.Retention, restic's forget semantics) over the
// local backup dir and an offsite prefix.

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ezrestore/ezrestore/offsite"
	"github.com/ezrestore/ezrestore/snapshot"
)

// Pruning is what a retention policy decided for one place.
type Pruning struct {
	// Where is the backup dir or the s3:// prefix.
	Where string `json:"where"`
	// Decisions cover every backup there, newest first, each kept with its
	// reasons or going.
	Decisions []snapshot.RetentionDecision `json:"decisions"`
	// Removed are the names removed (none on a dry run).
	Removed []string `json:"removed"`
	DryRun  bool     `json:"dry_run"`
}

// ReasonCopied protects the backup snapshot.db is a copy of.
const ReasonCopied = "copied by " + snapshot.LatestName

// PruneLocal applies p to the backups of dir (snapshot_<time>.db; any other
// file, snapshot.db included, is left alone) and, unless dryRun, removes
// those it does not keep, with their sidecars. The newest backup and the
// one snapshot.db copies are always kept.
func PruneLocal(dir string, p snapshot.Retention, dryRun bool) (*Pruning, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	entries, err := snapshot.List(dir)
	if err != nil {
		return nil, err
	}
	var latest *snapshot.Entry
	var items []snapshot.RetentionItem
	paths := map[string]snapshot.Entry{}
	for i, e := range entries {
		switch {
		case e.Name == snapshot.LatestName:
			latest = &entries[i]
		case snapshot.IsBackupName(e.Name):
			items = append(items, snapshot.RetentionItem{Name: e.Name, Time: orderTime(e.Time, e.Name)})
			paths[e.Name] = e
		}
	}
	if latest != nil && latest.CopyOf != "" {
		for i := range items {
			if items[i].Name == latest.CopyOf {
				items[i].Protected = ReasonCopied
			}
		}
	}
	res := &Pruning{Where: dir, Decisions: p.Apply(items), Removed: []string{}, DryRun: dryRun}
	// snapshot.db without a sidecar naming its source: compare contents with
	// the backups about to go (only those of its size need hashing).
	if latest != nil && latest.CopyOf == "" {
		latestSum := ""
		for i := range res.Decisions {
			d := &res.Decisions[i]
			if d.Keep || paths[d.Name].Size != latest.Size {
				continue
			}
			if latestSum == "" {
				if latestSum, err = snapshot.FileSHA256(latest.Path); err != nil {
					return nil, fmt.Errorf("cannot tell which backup %s copies, pruning nothing: %w", snapshot.LatestName, err)
				}
			}
			sum, err := snapshot.FileSHA256(paths[d.Name].Path)
			if err != nil {
				return nil, err
			}
			if sum == latestSum {
				d.Keep, d.Protected, d.Reasons = true, ReasonCopied, append(d.Reasons, ReasonCopied)
				break
			}
		}
	}
	if dryRun {
		return res, nil
	}
	for _, d := range res.Decisions {
		if d.Keep {
			continue
		}
		path := paths[d.Name].Path
		if err := os.Remove(path); err != nil {
			return res, err
		}
		_ = os.Remove(snapshot.SidecarPath(path))
		res.Removed = append(res.Removed, d.Name)
	}
	return res, nil
}

// orderTime is t in local time (periods are the operator's days), nudged by
// the backup's sequence within its minute so that backups the clock cannot
// tell apart keep the order they were taken in (snapshot_<t>-2.db after
// snapshot_<t>.db). Nanoseconds change no hour, day or week.
func orderTime(t time.Time, name string) time.Time {
	return t.Local().Add(time.Duration(snapshot.BackupSeq(name)) * time.Microsecond)
}

// Prune applies p to the snapshot objects of the prefix and, unless
// dryRun, deletes those it does not keep with their sidecars. The newest is
// always kept.
func PruneRemote(ctx context.Context, r *offsite.Remote, p snapshot.Retention, dryRun bool) (*Pruning, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	// With their sidecars: the time each backup was taken, to the second.
	entries, err := r.List(ctx, true)
	if err != nil {
		return nil, err
	}
	byName := map[string]offsite.RemoteEntry{}
	var items []snapshot.RetentionItem
	for i, e := range entries {
		// List's order (newest first) decides ties the times leave.
		items = append(items, snapshot.RetentionItem{Name: e.Name, Time: orderTime(e.Time, e.Name).Add(time.Duration(len(entries) - i))})
		byName[e.Name] = e
	}
	where := r.Loc
	where.Name = ""
	res := &Pruning{Where: where.String(), Decisions: p.Apply(items), Removed: []string{}, DryRun: dryRun}
	if dryRun {
		return res, nil
	}
	for _, d := range res.Decisions {
		if d.Keep {
			continue
		}
		if err := r.Delete(ctx, byName[d.Name]); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, d.Name)
	}
	return res, nil
}
