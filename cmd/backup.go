package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/backup"
	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/offsite"
	"github.com/ezrestore/ezrestore/runlock"
	"github.com/ezrestore/ezrestore/seal"
	"github.com/ezrestore/ezrestore/snapshot"
)

// retentionFlags are the --keep-* tiers, shared by backup, backup prune and
// backup schedule.
type retentionFlags struct {
	snapshot.Retention
	keep int
}

func (r *retentionFlags) add(c *cobra.Command, withKeep bool) {
	if withKeep {
		c.Flags().IntVar(&r.keep, "keep", 0, "keep only the newest N backups (0: keep all); the same as --keep-last N")
	}
	c.Flags().IntVar(&r.Last, "keep-last", 0, "keep the newest N backups")
	c.Flags().IntVar(&r.Hourly, "keep-hourly", 0, "keep the newest backup of each of the last N hours that have one (-1: every hour)")
	c.Flags().IntVar(&r.Daily, "keep-daily", 0, "keep the newest backup of each of the last N days that have one (-1: every day)")
	c.Flags().IntVar(&r.Weekly, "keep-weekly", 0, "keep the newest backup of each of the last N ISO weeks that have one (-1: every week)")
	c.Flags().IntVar(&r.Monthly, "keep-monthly", 0, "keep the newest backup of each of the last N months that have one (-1: every month)")
	c.Flags().IntVar(&r.Yearly, "keep-yearly", 0, "keep the newest backup of each of the last N years that have one (-1: every year)")
}

// policy is the tiers with --keep folded into --keep-last.
func (r *retentionFlags) policy() (snapshot.Retention, error) {
	p := r.Retention
	if r.keep < 0 {
		return p, fmt.Errorf("--keep must not be negative, got %d", r.keep)
	}
	if r.keep > 0 {
		if p.Last != 0 && p.Last != r.keep {
			return p, fmt.Errorf("--keep %d and --keep-last %d disagree: --keep N is --keep-last N, give one", r.keep, p.Last)
		}
		p.Last = r.keep
	}
	return p, p.Validate()
}

// offsiteFlags say where a copy goes and who may read it.
type offsiteFlags struct {
	to             string
	recipients     []string
	recipientFiles []string
}

func (o *offsiteFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&o.to, "to", "", "also copy each backup to S3-compatible storage: s3://BUCKET/PREFIX (credentials, region and endpoint from AWS_* and ~/.aws)")
	c.Flags().StringArrayVar(&o.recipients, "age-recipient", nil, "encrypt the offsite copy to this age (age1...) or SSH public key (repeatable)")
	c.Flags().StringArrayVar(&o.recipientFiles, "age-recipients-file", nil, "encrypt the offsite copy to the public keys in FILE, one a line (repeatable)")
}

// open parses the recipients and opens and checks the store; nil when no --to.
func (o *offsiteFlags) open(ctx context.Context) (*backup.Offsite, error) {
	rec, err := seal.ParseRecipients(o.recipients, o.recipientFiles)
	if err != nil {
		return nil, err
	}
	if o.to == "" {
		if rec != nil {
			return nil, errors.New("--age-recipient encrypts the offsite copy: give --to s3://BUCKET/PREFIX too (local backups stay on the bastion unencrypted, mode 0600)")
		}
		return nil, nil
	}
	return backup.OpenOffsite(ctx, o.to, offsite.Options{}, rec)
}

func newBackupCmd(g *Globals) *cobra.Command {
	t := &targetFlags{}
	var keep retentionFlags
	var off offsiteFlags
	var output, etcdBin, metricsFile string
	var breakLock, verifyRestore, includeSSHKey bool
	c := &cobra.Command{
		Use:   "backup [CLUSTER]",
		Short: "Take a verified etcd backup into the cluster's backup dir (and offsite)",
		Example: `  ezrestore backup k8s-01
  ezrestore backup k8s-01 --keep 14
  ezrestore backup k8s-01 --to s3://etcd-backups/k8s-01 --age-recipient age1... --keep-daily 7 --keep-monthly 12
  ezrestore backup k8s-01 --verify-restore
  ezrestore backup prune k8s-01 --keep-daily 7 --dry-run
  ezrestore backup schedule k8s-01 --every 30m --to s3://etcd-backups/k8s-01 --keep-daily 7
  ezrestore backup -i inventory/mycluster/hosts.yaml -o json`,
		Long: `Takes an etcd snapshot from the first healthy member of the cluster's etcd
group (unreachable or unhealthy members are skipped and reported), over SSH
with the host's own etcdctl and the inventory's TLS files (ca_dir), downloads
it, and verifies it: the same bytes as on the host, etcd's sha256 trailer, and
an etcd database with a revision. It is filed, mode 0600, as

  <base>/clusters/CLUSTER/backup/snapshot_<YYYYmmddHHMM>.db   (kubeasz's naming)
  <base>/clusters/CLUSTER/backup/snapshot_<YYYYmmddHHMM>.db.json   (metadata)

and snapshot.db is refreshed to a copy of it. A second backup in the same
minute gets the suffix -2, -3, ...; nothing is ever overwritten. With no
healthy member reachable nothing is written and the command fails, listing
each member's reason.

--verify-restore proves the backup restores: it is restored into a
throwaway single-member etcd on 127.0.0.1 (etcd from <base>/bin, where
kubeasz keeps it, or --etcd-bin DIR, else $PATH), whose revision and key
count must match the backup's; then that etcd and its dir are removed.

--to s3://BUCKET/PREFIX copies each backup to S3-compatible object storage
as PREFIX/snapshot_<time>.db and its .json sidecar, read back to prove it.
Credentials, region and endpoint come the AWS way (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL,
AWS_PROFILE, ~/.aws/config and credentials). The store is asked first: one
that cannot be reached or refuses fails the command before a snapshot is
taken. A snapshot holds every Secret of the cluster: with --age-recipient or
--age-recipients-file the copy is encrypted with age before it leaves the
bastion and stored as snapshot_<time>.db.age. The local backup is kept
either way; a failed copy fails the command (exit 1) and prunes nothing.

With --to, a backup of a kubeasz cluster (CLUSTER, not -i) also stores the
cluster dir's rebuild kit beside the snapshot, as <object>.kit.tar.age: the
inventory files, config.yml, ssl/, kubectl.kubeconfig and the recorded host
keys (ssh/known_hosts), encrypted to the same recipients. SSH private keys
are left out unless --include-ssh-key. Without a recipient no kit is stored
(it holds the CA keys) and the output says so. ezrestore clusters fetch
recreates the cluster dir on a fresh bastion from it; retention removes a
kit with its snapshot.

Retention, after a backup, in the backup dir and (with --to) the prefix:
--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly,
--keep-yearly N keep, per tier, the newest backup of each of the last N
periods that have one (restic's forget). The newest backup and the one
snapshot.db copies are never removed, nor any file not named
snapshot_<time>.db. --keep N is --keep-last N. See what a policy would
remove, and why each survivor stays, with ezrestore backup prune --dry-run.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := t.selector(g, args)
			if err != nil {
				return err
			}
			policy, err := keep.policy()
			if err != nil {
				return err
			}
			dest, err := off.open(cmd.Context())
			if err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			started := time.Now()
			res, err := backup.Take(cmd.Context(), backup.Options{
				Target:        sel,
				Forks:         t.forks,
				Retention:     policy,
				Offsite:       dest,
				VerifyRestore: verifyRestore,
				EtcdBin:       etcdBin,
				Log:           func(f string, a ...any) { fmt.Fprintf(errOut, f+"\n", a...) },
				Progress:      downloadProgress,
				BreakLock:     breakLock,
				IncludeSSHKey: includeSSHKey,
			})
			if metricsFile != "" {
				label := sel.Cluster
				if label == "" {
					label = sel.Inventory
				}
				if _, merr := backup.RecordMetrics(metricsFile, label, started, time.Since(started), res, err); merr != nil {
					fmt.Fprintf(errOut, "warning: metrics file %s: %v\n", metricsFile, merr)
				}
			}
			err = lockError(err)
			out := cmd.OutOrStdout()
			if output != "text" {
				if perr := printData(out, output, jsonResult(res, err), nil); perr != nil {
					return perr
				}
				return err
			}
			if res == nil {
				return err
			}
			s := res.Sidecar
			fmt.Fprintf(out, "backup %s\n", res.Path)
			fmt.Fprintf(out, "  from %s (etcd %s) at %s\n", s.SourceHost, orUnknown(s.EtcdVersion), snapshot.FormatTime(s.Time))
			fmt.Fprintf(out, "  revision %d, %d keys, %s, sha256 %s (trailer verified)\n", s.Revision, s.Keys, bytesize.Human(s.Size), s.SHA256)
			fmt.Fprintf(out, "  %s now copies it\n", snapshot.LatestName)
			if v := res.Verified; v != nil {
				fmt.Fprintf(out, "  restores: a throwaway etcd %s reported revision %d, %d keys (%.1fs)\n", v.EtcdVersion, v.Revision, v.Keys, v.Took.Seconds())
			}
			if u := res.Offsite; u != nil {
				enc := "not encrypted"
				if u.Encrypted {
					enc = fmt.Sprintf("encrypted to %d age recipient(s)", len(u.Sidecar.AgeRecipients))
				}
				fmt.Fprintf(out, "  offsite %s (%s, %s, read back and verified)\n", u.URL, bytesize.Human(u.Object.Size), enc)
				switch {
				case u.KitURL != "":
					fmt.Fprintf(out, "  rebuild kit %s (%s; encrypted the same way; `ezrestore clusters fetch` recreates the cluster dir from it)\n", u.KitURL, strings.Join(u.KitFiles, ", "))
				case u.KitSkipped != "":
					fmt.Fprintf(out, "  no rebuild kit: %s\n", u.KitSkipped)
				}
			}
			for _, sk := range res.Skipped {
				fmt.Fprintf(out, "  skipped member %s\n", sk)
			}
			for _, p := range res.Retention {
				for _, n := range p.Removed {
					fmt.Fprintf(out, "  pruned %s\n", joinWhere(p.Where, n))
				}
			}
			return err
		},
	}
	t.add(c, g)
	addBreakLock(c, &breakLock)
	keep.add(c, true)
	off.add(c)
	c.Flags().BoolVar(&verifyRestore, "verify-restore", false, "prove the backup restores into a throwaway etcd on 127.0.0.1 before reporting it (and before copying it offsite)")
	c.Flags().StringVar(&etcdBin, "etcd-bin", "", "dir with etcd and etcdutl for --verify-restore (default <base>/bin, then $PATH)")
	c.Flags().BoolVar(&includeSSHKey, "include-ssh-key", false, "with --to: pack the cluster dir's SSH private keys into the rebuild kit too (left out by default)")
	c.Flags().StringVar(&metricsFile, "metrics-file", "", "after the backup, good or failed, rewrite this Prometheus textfile-collector file (.prom): last attempt and success times, duration, size, revision, keys, consecutive failures")
	addOutput(c, &output)
	c.AddCommand(newBackupPruneCmd(g), newBackupScheduleCmd(g))
	return c
}

// joinWhere names n in a backup dir or an s3:// prefix.
func joinWhere(where, n string) string {
	if offsite.IsURL(where) {
		return strings.TrimSuffix(where, "/") + "/" + n
	}
	return filepath.Join(where, n)
}

func newBackupPruneCmd(g *Globals) *cobra.Command {
	var keep retentionFlags
	var to, output string
	var dryRun, breakLock bool
	c := &cobra.Command{
		Use:   "prune CLUSTER",
		Short: "Apply a retention policy to the backups (and an offsite prefix); --dry-run shows why",
		Example: `  ezrestore backup prune k8s-01 --keep-daily 7 --keep-weekly 4 --dry-run
  ezrestore backup prune k8s-01 --to s3://etcd-backups/k8s-01 --keep-last 2`,
		Long: `Applies --keep-last/--keep-hourly/--keep-daily/--keep-weekly/--keep-monthly/
--keep-yearly (restic's forget semantics, see ezrestore backup --help) to
<base>/clusters/CLUSTER/backup and, with --to, to that s3:// prefix. Each
backup is listed, newest first, as kept (with the tiers that keep it) or
removed. The newest backup and the one snapshot.db copies are never removed,
nor any file not named snapshot_<time>.db. --dry-run removes nothing.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeClusters(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, err := keep.policy()
			if err != nil {
				return err
			}
			if policy.Empty() {
				return errors.New("give a policy: --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly or --keep-yearly")
			}
			cd := g.ClusterDir(args[0])
			if !dryRun {
				lock, err := runlock.AcquireRun(filepath.Join(cd.Path, runlock.FileName), "backup prune", "cluster "+args[0], breakLock, cmd.ErrOrStderr())
				if err != nil {
					return lockError(err)
				}
				defer lock.Release(cmd.Context())
			}
			var all []*backup.Pruning
			local, err := backup.PruneLocal(cd.BackupDir(), policy, dryRun)
			if local != nil {
				all = append(all, local)
			}
			if err == nil && to != "" {
				var r *offsite.Remote
				if r, err = offsite.OpenRemote(cmd.Context(), to, offsite.Options{}); err == nil {
					var remote *backup.Pruning
					remote, err = backup.PruneRemote(cmd.Context(), r, policy, dryRun)
					if remote != nil {
						all = append(all, remote)
					}
				}
			}
			out := cmd.OutOrStdout()
			if output != "text" {
				if all == nil {
					all = []*backup.Pruning{}
				}
				if perr := printData(out, output, all, nil); perr != nil {
					return perr
				}
				return err
			}
			for _, p := range all {
				printPruning(out, p, policy)
			}
			return err
		},
	}
	keep.add(c, false)
	c.Flags().StringVar(&to, "to", "", "also prune this offsite prefix: s3://BUCKET/PREFIX")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be removed and why each survivor stays; remove nothing")
	addBreakLock(c, &breakLock)
	addOutput(c, &output)
	return c
}

func printPruning(w io.Writer, p *backup.Pruning, policy snapshot.Retention) {
	verb := "removed"
	if p.DryRun {
		verb = "would remove"
	}
	gone := 0
	for _, d := range p.Decisions {
		if !d.Keep {
			gone++
		}
	}
	fmt.Fprintf(w, "%s (%s): keep %d, %s %d\n", p.Where, policy, len(p.Decisions)-gone, verb, gone)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, d := range p.Decisions {
		if d.Keep {
			fmt.Fprintf(tw, "  keep\t%s\t%s\t%s\n", d.Name, snapshot.FormatTime(d.Time), d.Reason())
		} else {
			fmt.Fprintf(tw, "  %s\t%s\t%s\tkept by no tier\n", verb, d.Name, snapshot.FormatTime(d.Time))
		}
	}
	tw.Flush()
}

func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}

// jsonResult is a backup in the output vocabulary; a failed one has an
// error field and the members tried.
func jsonResult(r *backup.Result, err error) any {
	type skip struct {
		Host   string `json:"host" yaml:"host"`
		Member string `json:"member" yaml:"member"`
		Error  string `json:"error" yaml:"error"`
	}
	out := struct {
		Path    string            `json:"path,omitempty" yaml:"path,omitempty"`
		Meta    *snapshot.Sidecar `json:"meta,omitempty" yaml:"meta,omitempty"`
		Skipped []skip            `json:"skipped" yaml:"skipped"`
		Pruned  []string          `json:"pruned" yaml:"pruned"`
		// Verified is the restore proof (--verify-restore).
		Verified *backup.VerifiedRestore `json:"verified_restore,omitempty" yaml:"verified_restore,omitempty"`
		// Offsite is the offsite copy (--to).
		Offsite   *backup.Uploaded  `json:"offsite,omitempty" yaml:"offsite,omitempty"`
		Retention []*backup.Pruning `json:"retention,omitempty" yaml:"retention,omitempty"`
		Error     string            `json:"error,omitempty" yaml:"error,omitempty"`
	}{Skipped: []skip{}, Pruned: []string{}}
	var skipped []backup.SkippedMember
	if r != nil {
		out.Path, out.Meta, skipped = r.Path, &r.Sidecar, r.Skipped
		out.Verified, out.Offsite, out.Retention = r.Verified, r.Offsite, r.Retention
		if r.Pruned != nil {
			out.Pruned = r.Pruned
		}
	}
	var nm interface{ SkippedHosts() []backup.SkippedMember }
	if errors.As(err, &nm) {
		skipped = nm.SkippedHosts()
	}
	for _, s := range skipped {
		out.Skipped = append(out.Skipped, skip{s.Host, s.Member, s.Err.Error()})
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// downloadProgress draws a progress bar on stderr when it is a terminal.
func downloadProgress(title string, size int64) (func(int64), func()) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return func(int64) {}, func() {}
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(title),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { io.WriteString(os.Stderr, "\n") }),
	)
	return func(n int64) { _ = bar.Set64(n) }, func() { _ = bar.Finish() }
}
