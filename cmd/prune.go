package cmd

import (
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ezrestore/ezrestore/restore"
)

func newPruneCmd(g *Globals) *cobra.Command {
	t := &targetFlags{}
	req := restore.PruneRequest{}
	var output string
	c := &cobra.Command{
		Use:   "prune [CLUSTER]",
		Short: "Remove set-aside etcd data and staged copies that earlier restores left on the etcd hosts",
		Example: `  ezrestore prune k8s-01 --dry-run
  ezrestore prune k8s-01 --keep 1
  ezrestore prune k8s-01 --older-than 168h --yes
  ezrestore prune k8s-01 --run 20260101T000000Z`,
		Long: `prune removes, on every etcd host, the dirs earlier restores left beside
etcd's data: <data-dir>/member.before-<token> and <wal-dir>.before-<token>
(the old data a swap set aside; <wal-dir>/.before-<token> inside a WAL dir
that is a mount point or a symlink), member.restored-<token> (restored data a
put-back set aside) and <data-dir>/.ezrestore/<token>/ (staged copies).

It keeps the newest run's data and that of the --keep newest runs that set
data aside, and never removes the data of a run that did not end healthy (or
has no run record) unless that run is named with --run. It never touches the
live member or WAL dir, nor any name it does not make. It shows what it will
remove and asks for a typed yes (or --yes), and records what it removed in
<cluster dir>/prunes/<time>.json. ` + "`ezrestore status`" + ` shows what is there.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			sel, err := t.selector(g, args)
			if err != nil {
				return err
			}
			req.Target, req.Forks = sel, t.forks
			req.Out = c.OutOrStdout()
			if output != "text" {
				req.Out = c.ErrOrStderr()
			}
			if term.IsTerminal(int(os.Stdin.Fd())) {
				req.Confirm = askYes
			}
			rep, err := restore.Prune(c.Context(), req)
			if output != "text" && rep != nil {
				if perr := printData(c.OutOrStdout(), output, rep, nil); perr != nil && err == nil {
					err = perr
				}
			}
			return lockError(err)
		},
	}
	t.add(c, g)
	c.Flags().IntVar(&req.Keep, "keep", 1, "keep the data of this many newest runs that set data aside (at least 1)")
	c.Flags().DurationVar(&req.OlderThan, "older-than", 0, "remove only runs older than this (e.g. 168h)")
	c.Flags().StringVar(&req.Run, "run", "", "remove only this run's data (a run id or token), even the newest or one that did not end healthy")
	c.Flags().BoolVar(&req.DryRun, "dry-run", false, "show what would be removed, remove nothing")
	c.Flags().BoolVar(&req.Yes, "yes", false, "do not ask for a typed yes (needed without a terminal)")
	addBreakLock(c, &req.BreakLock)
	addOutput(c, &output)
	return c
}
