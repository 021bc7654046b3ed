package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ezrestore/ezrestore/recover"
	"github.com/ezrestore/ezrestore/restore"
)

func newRecoverCmd(g *Globals) *cobra.Command {
	t := &targetFlags{}
	req := recover.Request{}
	var breakLock bool
	var output string
	c := &cobra.Command{
		Use:   "recover [CLUSTER] --snapshot S (OBJECT... | --namespace NS)",
		Short: "Write chosen objects of a snapshot back into the running cluster, as they were, and change nothing else",
		Long: `Write the objects named (or a namespace with everything that was in it) back
into the running cluster's etcd as the snapshot holds them, with their
original uid, through a create-only transaction: only what is absent now is
written, an object that exists is refused unless --replace (which shows the
diff first). A namespace is written before its contents, an owner before what
it owns. It plans first (--dry-run stops there), asks for a typed yes (or
--yes), holds the cluster's run lock and leaves a record in
<cluster dir>/recovers/<run id>/.

OBJECT is RESOURCE/NAMESPACE/NAME (pod/default/web-0, deployment.apps/web/front),
RESOURCE//NAME for a cluster-scoped one (namespace//team-a), or an etcd key.`,
		Example: `  ezrestore recover k8s-01 --snapshot latest --namespace team-a --dry-run
  ezrestore recover k8s-01 --snapshot latest --namespace team-a
  ezrestore recover k8s-01 --snapshot snapshot_202611210300.db deployment/web/front configmap/web/front-config
  ezrestore recover k8s-01 --snapshot latest configmap/web/settings --replace`,
		RunE: func(c *cobra.Command, args []string) error {
			var clusterArg []string
			if t.inventory == "" && len(args) > 0 {
				clusterArg, args = args[:1], args[1:]
			}
			sel, err := t.selector(g, clusterArg)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			if output != "text" && !req.DryRun {
				return fmt.Errorf("-o %s prints the plan as data: it goes with --dry-run", output)
			}
			req.Target, req.Objects, req.Forks, req.Out = sel, args, t.forks, out
			if output != "text" {
				req.Out = c.ErrOrStderr() // progress lines stay out of the data
			}
			if term.IsTerminal(int(os.Stdin.Fd())) {
				req.Confirm = askYes
			}
			if !req.DryRun {
				lock, err := restore.LockCluster(sel, restore.LockOptions{Command: "recover", Break: breakLock, Out: out})
				if err != nil {
					return lockError(err)
				}
				defer lock.Release(c.Context())
				req.Lock = lock
			} else if held := restore.LockHeld(sel); held != "" {
				c.PrintErrf("Warning: %s\n", held)
			}
			s, err := recover.Prepare(c.Context(), req)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := printData(out, output, s.Plan, func() error { s.Plan.WriteText(out); return nil }); err != nil {
				return err
			}
			if req.DryRun {
				return s.Plan.Refused()
			}
			return lockError(s.Execute(c.Context()))
		},
	}
	t.add(c, g)
	c.Flags().StringVar(&req.Snapshot, "snapshot", "", "the snapshot to recover from: a file in the cluster's backup/, a path, latest, before:<RFC3339>, s3://BUCKET/PREFIX[/NAME|latest] (default snapshot.db)")
	c.Flags().StringVar(&req.AgeIdentity, "age-identity", "", "age identity file that decrypts an encrypted offsite --snapshot")
	c.Flags().StringVar(&req.Namespace, "namespace", "", "recover a deleted namespace with everything that was in it")
	c.Flags().BoolVar(&req.Replace, "replace", false, "write the snapshot's objects over those that exist now (the diff is shown first)")
	c.Flags().BoolVar(&req.DryRun, "dry-run", false, "show the plan (each object, its key, what will happen) and change nothing")
	c.Flags().BoolVar(&req.Yes, "yes", false, "do not ask for a typed yes (needed without a terminal)")
	addBreakLock(c, &breakLock)
	addOutput(c, &output)
	_ = c.RegisterFlagCompletionFunc("snapshot", completeSnapshots(g))
	return c
}
