package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/offsite"
	"github.com/ezrestore/ezrestore/snapshot"
)

func newSnapshotCmd(g *Globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "snapshot",
		Short: "Look inside etcd snapshot files offline",
		Example: `  ezrestore snapshot inspect backup/snapshot.db
  ezrestore snapshot find net-test3 --cluster k8s-01`,
	}
	c.AddCommand(newSnapshotInspectCmd(g), newSnapshotFindCmd(g), newSnapshotVerifyCmd(g), newSnapshotGetCmd(g), newSnapshotLsCmd(g))
	return c
}

func printJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func newSnapshotInspectCmd(g *Globals) *cobra.Command {
	var output, identity string
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Size, digest, trailer check, revision and key counts of a snapshot",
		Example: `  ezrestore snapshot inspect /etc/kubeasz/clusters/k8s-01/backup/snapshot.db
  ezrestore snapshot inspect snapshot_202611210300.db -o json`,
		Long: `Reads an etcd snapshot file offline (etcd need not run) and reports its
size, sha256, whether etcdctl's sha256 trailer matches (hash_verified; absent
for a copy of member/snap/db, which has none), its revision and compaction
revision, the live keys at that revision, and their counts per Kubernetes
resource and namespace. Exits 1 when the file is damaged.

FILE may be an offsite snapshot, s3://BUCKET/PREFIX/NAME (or .../latest,
.../before:<time>): it is downloaded into a private temp file, checked
against its sidecar, decrypted with --age-identity when encrypted, read,
and removed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, done, err := localSnapshot(cmd, args[0], identity)
			if err != nil {
				return err
			}
			defer done()
			info, err := snapshot.Inspect(path)
			if info != nil && path != args[0] {
				info.Path = args[0]
			}
			out := cmd.OutOrStdout()
			if output != "text" {
				if info == nil {
					info = &snapshot.Info{Path: args[0]}
				}
				report := struct {
					*snapshot.Info
					Error string `json:"error,omitempty" yaml:"error,omitempty"`
				}{Info: info}
				if err != nil {
					report.Error = err.Error()
				}
				if perr := printData(out, output, report, nil); perr != nil {
					return perr
				}
			} else if info != nil {
				printInfo(out, info)
			}
			return exitStatus(snapshot.InspectStatus(info, err))
		},
	}
	addIdentity(c, &identity)
	addOutput(c, &output)
	return c
}

func addIdentity(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "age-identity", "", "age identity file (or unencrypted SSH private key) that decrypts an encrypted offsite snapshot")
}

// localSnapshot returns a local file for arg: arg itself, or an offsite
// snapshot downloaded, checked and decrypted into a private temp file
// (removed by done).
func localSnapshot(cmd *cobra.Command, arg, identity string) (path string, done func(), err error) {
	if !offsite.IsURL(arg) {
		return arg, func() {}, nil
	}
	f, err := offsite.Fetch(cmd.Context(), arg, offsite.FetchOptions{Identity: identity})
	if err != nil {
		return "", nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s\n", f.How)
	return f.Path, func() { f.Remove() }, nil
}

func printInfo(w io.Writer, info *snapshot.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s\n", info.Path)
	fmt.Fprintf(tw, "size\t%s (%d bytes)\n", bytesize.Human(info.Size), info.Size)
	fmt.Fprintf(tw, "sha256\t%s\n", info.SHA256)
	switch {
	case info.HashVerified == nil:
		fmt.Fprintf(tw, "hash\tno trailer (a copy of member/snap/db: a restore needs --skip-hash-check)\n")
	case *info.HashVerified:
		fmt.Fprintf(tw, "hash\tverified (etcdctl's sha256 trailer matches)\n")
	default:
		fmt.Fprintf(tw, "hash\tMISMATCH: the sha256 trailer does not match, the file is damaged\n")
	}
	if info.DBSize == 0 { // the database could not be read
		tw.Flush()
		return
	}
	fmt.Fprintf(tw, "revision\t%d (compacted at %d)\n", info.Revision, info.CompactRevision)
	fmt.Fprintf(tw, "keys\t%d live (%d revisions kept)\n", info.Keys, info.Revisions)
	fmt.Fprintf(tw, "consistent index\t%d\n", info.ConsistentIndex)
	tw.Flush()
	printCounts(w, "resources", info.Resources, info.OtherKeys, "(outside /registry/)")
	printCounts(w, "namespaces", info.Namespaces, 0, "")
}

// printCounts prints a count table, largest first.
func printCounts(w io.Writer, title string, m map[string]int, extra int, extraName string) {
	if len(m) == 0 && extra == 0 {
		return
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	fmt.Fprintf(w, "%s:\n", title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, n := range names {
		fmt.Fprintf(tw, "\t%d\t  %s\n", m[n], n)
	}
	if extra > 0 {
		fmt.Fprintf(tw, "\t%d\t  %s\n", extra, extraName)
	}
	tw.Flush()
}

// exitStatus turns a library's verdict into the command's exit status.
func exitStatus(code int, err error) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

func newSnapshotFindCmd(g *Globals) *cobra.Command {
	var output, cluster, identity string
	c := &cobra.Command{
		Use:   "find PATTERN [FILE...]",
		Short: "Which snapshots hold live keys matching PATTERN",
		Example: `  ezrestore snapshot find net-test3 --cluster k8s-01
  ezrestore snapshot find '/registry/pods/*/net-*' backup/snapshot_202611211205.db`,
		Long: `Searches snapshot files offline for keys that are live at each snapshot's
revision and match PATTERN: a substring, or, when PATTERN contains '*', a glob
over the whole key in which '*' matches anything, '/' included.

  ezrestore snapshot find net-test3 --cluster k8s-01
  ezrestore snapshot find '/registry/pods/*/net-*' backup/snapshot_202611211205.db

With --cluster, the cluster's backup dir is searched, newest first. A FILE
may be offsite: s3://BUCKET/PREFIX searches every snapshot there, newest
first, s3://BUCKET/PREFIX/NAME one; each is downloaded into a private temp
file, checked, decrypted with --age-identity when encrypted, searched and
removed.
Exits 0 when some snapshot matched, 1 when none did, 2 when a file could not be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pattern := args[0]
			var targets []findTarget
			for _, f := range args[1:] {
				if !offsite.IsURL(f) {
					targets = append(targets, findTarget{local: snapshot.Target{Path: f}})
					continue
				}
				remote, err := remoteTargets(cmd.Context(), f)
				if err != nil {
					return err
				}
				targets = append(targets, remote...)
			}
			if cluster != "" {
				backups, err := snapshot.BackupTargets(g.ClusterDir(cluster).BackupDir())
				if err != nil {
					return fmt.Errorf("cluster %s: %w", cluster, err)
				}
				for _, b := range backups {
					targets = append(targets, findTarget{local: b})
				}
			}
			if len(targets) == 0 {
				return errors.New("name snapshot files or --cluster")
			}
			out := cmd.OutOrStdout()
			results := []snapshot.FindResult{}
			report := func(r snapshot.FindResult) {
				if output != "text" {
					results = append(results, r)
				} else {
					printFind(out, cmd.ErrOrStderr(), r)
				}
			}
			tally := snapshot.FindTally{Pattern: pattern}
			for _, t := range targets {
				var tl snapshot.FindTally
				if t.remote == nil {
					tl = snapshot.FindAll([]snapshot.Target{t.local}, pattern, report)
				} else {
					tl = findRemote(cmd.Context(), t, pattern, identity, report)
				}
				tally.Searched += tl.Searched
				tally.Found += tl.Found
				tally.Failed += tl.Failed
			}
			if output != "text" {
				if err := printData(out, output, results, nil); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "%q: live in %d of %d snapshots\n", pattern, tally.Found, tally.Searched)
			}
			return exitStatus(tally.Status())
		},
	}
	c.Flags().StringVar(&cluster, "cluster", "", "search the backups of this cluster (<base>/clusters/<name>/backup)")
	addIdentity(c, &identity)
	addOutput(c, &output)
	return c
}

func printFind(out, errOut io.Writer, r snapshot.FindResult) {
	name := r.File
	if r.Time != nil {
		name = filepath.Base(r.File) + " (" + snapshot.FormatTime(*r.Time) + ")"
	}
	switch {
	case r.Error != "":
		fmt.Fprintf(errOut, "%s: %s\n", name, r.Error)
	case len(r.Matches) == 0:
		fmt.Fprintf(out, "%s: no live key matches (revision %d)\n", name, r.Revision)
	default:
		what := "live keys match"
		if len(r.Matches) == 1 {
			what = "live key matches"
		}
		fmt.Fprintf(out, "%s: %d %s (revision %d)\n", name, len(r.Matches), what, r.Revision)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, m := range r.Matches {
			fmt.Fprintf(tw, "  %s\tcreated at %d\tmodified at %d\n", m.Key, m.CreateRevision, m.ModRevision)
		}
		tw.Flush()
	}
}

func newSnapshotsCmd(g *Globals) *cobra.Command {
	var output, identity string
	var listOnly bool
	var maxAge time.Duration
	c := &cobra.Command{
		Use:   "snapshots CLUSTER|s3://BUCKET/PREFIX",
		Short: "List a cluster's backups, newest first, each verified",
		Example: `  ezrestore snapshots k8s-01
  ezrestore snapshots k8s-01 -o yaml`,
		Long: `Lists the snapshot files of <base>/clusters/CLUSTER/backup/, newest first,
with time, size, revision, live key count and integrity, read offline. Every
file is read in full to check it:
  ok               etcdctl's sha256 trailer matches
  no trailer       readable, but a copy of member/snap/db: nothing to verify against
  hash mismatch    the trailer does not match: damaged
  sidecar mismatch the file is not the one recorded when the backup was taken
  unreadable: ...  not a readable etcd database, and why
Exits 1 when a file is damaged.

An offsite prefix, s3://BUCKET/PREFIX, is listed the same way: each snapshot
there is downloaded into a private temp file, checked against its sidecar,
decrypted with --age-identity when encrypted, read and removed (--list-only
shows what the store and the sidecars say without downloading).

--max-age DURATION (24h, 90m) makes it a check for monitoring: it exits 1
with one line saying why when the newest verified backup (its sha256
trailer checked; offsite, downloaded and checked, or with --list-only as
its sidecar, written once the upload was read back, says) is older.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if offsite.IsURL(args[0]) {
				return listRemote(cmd, args[0], identity, listOnly, output, maxAge)
			}
			dir := g.ClusterDir(args[0]).BackupDir()
			entries, err := snapshot.Catalog(dir)
			if err != nil {
				return fmt.Errorf("cluster %s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			if output != "text" {
				if entries == nil {
					entries = []snapshot.Entry{}
				}
				if err := printData(out, output, entries, nil); err != nil {
					return err
				}
			} else if len(entries) == 0 {
				fmt.Fprintf(out, "no snapshots in %s\n", dir)
			} else {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tTIME\tSIZE\tREVISION\tKEYS\tINTEGRITY\tSOURCE")
				for _, e := range entries {
					keys := "-"
					if e.Keys >= 0 {
						keys = fmt.Sprint(e.Keys)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.Name, snapshot.FormatTime(e.Time),
						bytesize.Human(e.Size), e.Revision, keys, e.Integrity, e.Source())
				}
				tw.Flush()
			}
			if maxAge > 0 {
				var name string
				var taken time.Time
				if n := snapshot.NewestVerified(entries); n != nil {
					name, taken = n.Name, n.Time
				}
				if err := snapshot.CheckAge("cluster "+args[0], name, taken, maxAge, time.Now()); err != nil {
					return &ExitError{Code: snapshot.StatusProblem, Err: err}
				}
			}
			return exitStatus(snapshot.CatalogStatus(dir, entries))
		},
	}
	addIdentity(c, &identity)
	c.Flags().DurationVar(&maxAge, "max-age", 0, "exit 1, saying why in one line, when the newest verified backup is older than this (a monitoring check)")
	c.Flags().BoolVar(&listOnly, "list-only", false, "offsite: list from the store and the sidecars, download nothing")
	addOutput(c, &output)
	return c
}
