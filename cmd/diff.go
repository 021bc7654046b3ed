package cmd

// `ezrestore diff`: what a restore would undo.

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/diff"
	"github.com/ezrestore/ezrestore/objects"
	"github.com/ezrestore/ezrestore/offsite"
	"github.com/ezrestore/ezrestore/restore"
	"github.com/ezrestore/ezrestore/snapshot"
)

func newDiffCmd(g *Globals) *cobra.Command {
	t := &targetFlags{}
	var spec, output, object, encConfig, identity string
	var limit int
	c := &cobra.Command{
		Use:   "diff CLUSTER --snapshot S | diff S1 S2",
		Short: "What a restore would undo: objects created, deleted and modified since a snapshot",
		Example: `  ezrestore diff k8s-01 --snapshot latest
  ezrestore diff k8s-01 --snapshot snapshot_202611211205.db --object deployment/web/front
  ezrestore diff backup/snapshot_202611211200.db backup/snapshot_202611211205.db -o json`,
		Long: `Compares a snapshot with the live cluster's etcd (one member, reached through
its host's SSH connection with the client certificate its etcd unit names)
by keys and revisions: objects created since the snapshot (a restore deletes them),
deleted since (it brings them back), modified since (it reverts them).
Counts come first, per resource and namespace, then the names (at most
--limit per list; all of them with -o json or -o yaml). Events and leases
change all the time: they are counted apart, not listed.

--snapshot takes what restore takes ("" snapshot.db, latest,
before:<RFC3339>, a file name or path). With two files, diff compares them
offline: what a restore to S1 would undo on a cluster holding S2.
--object RESOURCE/NAMESPACE/NAME prints a unified diff of that object's YAML.

Without quorum etcd answers no read: diff then says so and why, and
exits 1.`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dec, err := decoderFor(encConfig)
			if err != nil {
				return err
			}
			var from, to diff.Source
			if len(args) == 2 {
				if spec != "" {
					return errors.New("two snapshot files are compared offline: --snapshot goes with a CLUSTER")
				}
				var paths [2]string
				for i, a := range args {
					p, done, err := localSnapshot(cmd, a, identity)
					if err != nil {
						return err
					}
					defer done()
					paths[i] = p
				}
				from, to = diff.SnapshotFile{Path: paths[0], Label: args[0]}, diff.SnapshotFile{Path: paths[1], Label: args[1]}
			} else {
				sel, err := t.selector(g, args)
				if err != nil {
					return err
				}
				live, cl, closeLive, err := restore.OpenLive(cmd.Context(), sel, t.forks)
				if err != nil {
					return err
				}
				defer closeLive()
				var path, label string
				if offsite.IsURL(spec) {
					p, done, err := localSnapshot(cmd, spec, identity)
					if err != nil {
						return err
					}
					defer done()
					path, label = p, spec
				} else {
					var how string
					if path, how, err = snapshot.Resolve(cl.BackupDir, spec); err != nil {
						return fmt.Errorf("cluster %s: %w", cl.Name, err)
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "snapshot: %s\n", how)
					label = filepath.Base(path)
				}
				from, to = diff.SnapshotFile{Path: path, Label: "snapshot " + label}, live
			}
			out := cmd.OutOrStdout()
			if object != "" {
				ref, err := objects.ParseRef(object)
				if err != nil {
					return err
				}
				d, err := diff.Object(cmd.Context(), from, to, ref, dec)
				if err != nil {
					return err
				}
				if d == "" {
					d = fmt.Sprintf("%s is the same in %s and %s\n", ref, from.Name(), to.Name())
				}
				_, err = fmt.Fprint(out, d)
				return err
			}
			res, err := diff.Sources(cmd.Context(), from, to)
			if err != nil {
				return err
			}
			return printData(out, output, res, func() error { res.WriteText(out, limit); return nil })
		},
	}
	t.add(c, g)
	c.Flags().StringVar(&spec, "snapshot", "", `with CLUSTER: the snapshot, as restore takes it ("" snapshot.db, latest, before:<RFC3339>, a file, s3://...)`)
	c.Flags().StringVar(&object, "object", "", "RESOURCE/NAMESPACE/NAME: a unified diff of this object's YAML")
	c.Flags().IntVar(&limit, "limit", 50, "names listed per kind of change in text output (-1: all)")
	addEncryptionConfig(c, &encConfig)
	addIdentity(c, &identity)
	addOutput(c, &output)
	return c
}
