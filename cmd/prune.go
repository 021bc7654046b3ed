package cmd

import (
	"encoding/json"
	"fmt"
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
		Long: `prune removes, on every etcd host, the dirs earlier restores left beside
etcd's data: <data-dir>/member.before-<token> and <wal-dir>.before-<token>
(the old data a swap set aside), member.restored-<token> (restored data a
rollback set aside) and <data-dir>/.ezrestore/<token>/ (staged copies).

It never removes the newest run's data, nor that of a run that did not end
healthy (or has no run record), unless that run is named with --run. It never
touches the live member or WAL dir. It shows what it will remove and asks for
a typed yes (or --yes), and records what it removed in <cluster dir>/prunes/.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			sel, err := t.selector(g, args)
			if err != nil {
				return err
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("-o must be text or json")
			}
			req.Target, req.Forks = sel, t.forks
			req.Out = c.OutOrStdout()
			if output == "json" {
				req.Out = os.Stderr
			}
			if term.IsTerminal(int(os.Stdin.Fd())) {
				req.Confirm = askYes
			}
			rep, err := restore.Prune(c.Context(), req)
			if output == "json" && rep != nil {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(rep); jerr != nil && err == nil {
					err = jerr
				}
			}
			return err
		},
	}
	t.add(c)
	c.Flags().IntVar(&req.Keep, "keep", 1, "keep the data of this many newest runs (at least 1)")
	c.Flags().DurationVar(&req.OlderThan, "older-than", 0, "remove only runs older than this (e.g. 168h)")
	c.Flags().StringVar(&req.Run, "run", "", "remove only this run's data (a run id or token), even the newest or one that did not end healthy")
	c.Flags().BoolVar(&req.DryRun, "dry-run", false, "show what would be removed, remove nothing")
	c.Flags().BoolVar(&req.Yes, "yes", false, "do not ask for a typed yes (needed without a terminal)")
	c.Flags().StringVarP(&output, "output", "o", "text", "text or json (the report on stdout, progress on stderr)")
	return c
}
