package cmd

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/kit"
	"github.com/ezrestore/ezrestore/transport"
)

func newClustersFetchCmd(g *Globals) *cobra.Command {
	var name, identity, at, output string
	c := &cobra.Command{
		Use:   "fetch s3://BUCKET/PREFIX",
		Short: "Recreate a cluster dir on a fresh bastion from the rebuild kit stored with the offsite backups",
		Example: `  ezrestore clusters fetch s3://etcd-backups/k8s-01 --age-identity ~/.config/ezrestore/age.key
  ezrestore clusters fetch s3://etcd-backups/k8s-01 --name k8s-01-old --at 2026-11-21T03:00:00Z --age-identity age.key`,
		Long: `Each ` + "`ezrestore backup CLUSTER --to s3://... --age-recipient ...`" + ` stores, beside the
snapshot, the cluster dir's rebuild kit: its inventory files, config.yml,
ssl/, kubectl.kubeconfig and recorded host keys (ssh/known_hosts), never an
SSH private key unless the backup had --include-ssh-key, encrypted to the
same recipients. fetch takes the newest kit under the prefix (--at TIME: the
newest taken at or before TIME), checks it against its snapshot's sidecar,
decrypts it with --age-identity and writes <base>/clusters/NAME/ (NAME: the
cluster the kit was taken from, or --name), files 0600 and dirs 0700. It
never writes over an existing cluster dir. In the inventory, the old cluster
dir's path and kubeasz's base_dir become the new ones. It prints the next
command: ezrestore plan NAME --snapshot s3://... .`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := kit.FetchOptions{Base: g.Base, Name: name, Identity: identity}
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return fmt.Errorf("--at %q: the time must be RFC 3339, like 2026-11-21T03:00:00Z: %w", at, err)
				}
				o.At = t
			}
			f, err := kit.Fetch(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output != "text" {
				return printData(out, output, f, nil)
			}
			m := f.Manifest
			fmt.Fprintf(out, "cluster %s: %s\n", f.Cluster, f.Dir)
			fmt.Fprintf(out, "  from the rebuild kit %s (taken %s from %s)\n", f.KitURL, m.Time.Format(time.RFC3339), m.Dir)
			fmt.Fprintf(out, "  files: %s\n", strings.Join(m.Files, ", "))
			for _, r := range f.Rewrites {
				fmt.Fprintf(out, "  %s: %d path(s) of the old bastion rewritten to %s\n", r.File, r.Count, f.Dir)
			}
			for _, p := range f.Missing {
				fmt.Fprintf(out, "  the inventory names %s, which the kit does not hold (an SSH private key is left out unless the backup had --include-ssh-key): copy it there before connecting\n", p)
			}
			if !m.SSHKeyIncluded && len(f.Missing) == 0 {
				fmt.Fprintln(out, "  no SSH private key in the kit: reach the hosts with --private-key KEY or ssh-agent")
			}
			next := fmt.Sprintf("ezrestore plan %s --snapshot %s", transport.Quote(f.Cluster), transport.Quote(f.Snapshot.URL))
			if f.Snapshot.Encrypted {
				next += " --age-identity " + transport.Quote(identity)
			}
			fmt.Fprintf(out, "Next: %s\n", next)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "the cluster dir's name (default: the cluster the kit was taken from)")
	c.Flags().StringVar(&identity, "age-identity", "", "age identity file (or unencrypted SSH private key) the kit was encrypted to")
	c.Flags().StringVar(&at, "at", "", "take the newest kit taken at or before this RFC 3339 time")
	addOutput(c, &output)
	return c
}
