package backup

// What follows a filed backup: the restore proof, the offsite copy, and
// retention, in that order, so only a proven backup leaves the bastion and
// nothing is pruned after a failure.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ezrestore/ezrestore/offsite"
	etcdverify "github.com/ezrestore/ezrestore/verify"
)

// VerifiedRestore is what the throwaway etcd reported for a backup.
type VerifiedRestore struct {
	Revision    int64         `json:"revision"`
	Keys        int64         `json:"keys"`
	EtcdVersion string        `json:"etcd_version"`
	Took        time.Duration `json:"took_ns"`
	// EtcdBin is the dir the etcd binaries came from ("" : $PATH).
	EtcdBin string `json:"etcd_bin"`
}

// EtcdBinDir is where a restore proof finds etcd: dir when given, else
// <base>/bin when it holds etcd (kubeasz keeps its binaries there), else
// "" for $PATH.
func EtcdBinDir(dir, base string) string {
	if dir != "" {
		return dir
	}
	if base != "" {
		if fi, err := os.Stat(filepath.Join(base, "bin", "etcd")); err == nil && fi.Mode().IsRegular() {
			return filepath.Join(base, "bin")
		}
	}
	return ""
}

// ProveRestore restores the snapshot at path into a throwaway etcd on a
// loopback port and compares its revision and key count with want's.
func ProveRestore(ctx context.Context, path, etcdBin string, revision int64, keys int) (*VerifiedRestore, error) {
	r, err := etcdverify.Restore(ctx, path, etcdverify.Options{BinDir: etcdBin, Want: etcdverify.Expect{Revision: revision, Keys: keys}})
	if err != nil {
		return nil, err
	}
	return &VerifiedRestore{Revision: r.Revision, Keys: r.Keys, EtcdVersion: r.EtcdVersion, Took: r.Took, EtcdBin: etcdBin}, nil
}

// prepareFinish checks, before any snapshot is taken, what finish will need.
func prepareFinish(o *Options) error {
	if o.Keep > 0 {
		if o.Retention.Last != 0 && o.Retention.Last != o.Keep {
			return fmt.Errorf("--keep %d and --keep-last %d disagree: --keep N is --keep-last N, give one", o.Keep, o.Retention.Last)
		}
		o.Retention.Last = o.Keep
	}
	if err := o.Retention.Validate(); err != nil {
		return err
	}
	if o.VerifyRestore {
		o.EtcdBin = EtcdBinDir(o.EtcdBin, o.Target.Base)
		if _, err := etcdverify.FindBinaries(o.EtcdBin); err != nil {
			return fmt.Errorf("--verify-restore: %w (no snapshot was taken)", err)
		}
	}
	return nil
}

// finish proves, copies and prunes after res was filed. On an error the
// local backup stays filed and res says how far it got.
func finish(ctx context.Context, o Options, res *Result) error {
	if o.VerifyRestore {
		o.Log("proving %s restores (a throwaway etcd on 127.0.0.1)", filepath.Base(res.Path))
		v, err := ProveRestore(ctx, res.Path, o.EtcdBin, res.Sidecar.Revision, res.Sidecar.Keys)
		if err != nil {
			return fmt.Errorf("backup %s is filed, but it did not restore (not copied offsite, nothing pruned): %w", res.Path, err)
		}
		res.Verified = v
	}
	if o.Offsite != nil {
		o.Log("copying %s to %s", filepath.Base(res.Path), o.Offsite.Loc)
		up, err := o.Offsite.Upload(ctx, res.Path, res.Sidecar)
		if err != nil {
			return fmt.Errorf("backup %s is filed locally, but the offsite copy failed (nothing pruned): %w", res.Path, err)
		}
		res.Offsite = up
	}
	if o.Retention.Empty() {
		return nil
	}
	local, err := PruneLocal(filepath.Dir(res.Path), o.Retention, false)
	if local != nil {
		res.Retention = append(res.Retention, local)
		res.Pruned = append(res.Pruned, local.Removed...)
	}
	if err != nil {
		return fmt.Errorf("backup %s is filed, but pruning failed: %w", res.Path, err)
	}
	if o.Offsite != nil {
		r := &offsite.Remote{Loc: o.Offsite.Loc, Store: o.Offsite.Store}
		remote, err := PruneRemote(ctx, r, o.Retention, false)
		if remote != nil {
			res.Retention = append(res.Retention, remote)
		}
		if err != nil {
			return fmt.Errorf("backup %s is filed and copied offsite, but pruning %s failed: %w", res.Path, o.Offsite.Loc, err)
		}
	}
	return nil
}
