package cmd

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ezrestore/ezrestore/restore"
)

func newRollbackCmd(g *Globals) *cobra.Command {
	t := &targetFlags{}
	var runID string
	var yes, breakLock bool
	var healthTimeout time.Duration
	c := &cobra.Command{
		Use:   "rollback [CLUSTER]",
		Short: "Put back the etcd data a restore set aside, on every etcd host, and start the cluster on it",
		Long: `Put back on every etcd host the data a restore set aside (by default the newest
run that set data aside, read from its run record's set-aside.json): stop the
Kubernetes units and etcd, move the restored member dir (and WAL dir) aside as
*.restored-<token> and the set-aside *.before-<token> back in place, start etcd
on all members at once, wait for health, then start the Kubernetes units.
Nothing is deleted. It shows its plan and asks for a typed yes (or --yes).`,
		Example: `  ezrestore rollback k8s-01
  ezrestore rollback k8s-01 --run 20261121T031502Z --yes
  ezrestore rollback -i inventory/mycluster/hosts.yaml --yes`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			sel, err := t.selector(g, args)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			lock, err := restore.LockCluster(sel, restore.LockOptions{Command: "rollback", Break: breakLock, Out: out})
			if err != nil {
				return lockError(err)
			}
			defer lock.Release(c.Context())
			req := restore.RollbackRequest{Target: sel, RunID: runID, Forks: t.forks, HealthTimeout: healthTimeout,
				Yes: yes, Out: out, Lock: lock}
			if term.IsTerminal(int(os.Stdin.Fd())) {
				req.Confirm = askYes
			}
			s, err := restore.PrepareRollback(c.Context(), req)
			if err != nil {
				return err
			}
			defer s.Close()
			s.WriteText(out)
			_, err = s.Execute(c.Context())
			return lockError(err)
		},
	}
	t.add(c, g)
	c.Flags().StringVar(&runID, "run", "", "the restore run to undo (a dir name under the cluster's restores/; default: the newest that set data aside)")
	c.Flags().BoolVar(&yes, "yes", false, "do not ask for a typed yes (needed without a terminal)")
	c.Flags().DurationVar(&healthTimeout, "health-timeout", 120*time.Second, "how long to wait for etcd to be healthy on the old data")
	addBreakLock(c, &breakLock)
	return c
}
