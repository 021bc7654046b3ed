package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/restore"
	"github.com/ezrestore/ezrestore/runlock"
)

// targetFlags are how every command that reaches hosts finds its inventory
// and connects: one set of flags, one cluster.Selector.
type targetFlags struct {
	inventory         string
	extraVars         []string
	identities        []string
	forks             int
	acceptNewHostKeys bool
}

func (t *targetFlags) add(c *cobra.Command, g *Globals) {
	c.ValidArgsFunction = completeClusters(g)
	c.Flags().StringVarP(&t.inventory, "inventory", "i", "", "an Ansible inventory file (INI or YAML) instead of a kubeasz cluster name")
	c.Flags().StringArrayVarP(&t.extraVars, "extra-vars", "e", nil, "extra variables as ansible-playbook takes them: KEY=VALUE, @vars.yml or JSON (repeatable; later wins)")
	c.Flags().StringArrayVar(&t.identities, "private-key", nil, "an SSH private key to offer after the inventory's ansible_ssh_private_key_file (repeatable; Ansible's --private-key)")
	c.Flags().IntVar(&t.forks, "forks", orchestrator.DefaultForks, "hosts worked on at once")
	c.Flags().BoolVar(&t.acceptNewHostKeys, "accept-new-host-keys", false, "trust hosts with no recorded key and record it (a changed key is always refused)")
}

func (t *targetFlags) selector(g *Globals, args []string) (cluster.Selector, error) {
	sel := cluster.Selector{Base: g.Base, Inventory: t.inventory, IdentityFiles: t.identities, AcceptNewHostKeys: t.acceptNewHostKeys}
	extra, err := inventory.ParseExtraVars(t.extraVars)
	if err != nil {
		return sel, err
	}
	sel.ExtraVars = extra
	switch {
	case len(args) == 1 && t.inventory != "":
		return sel, fmt.Errorf("give a cluster name or -i, not both")
	case len(args) == 1:
		sel.Cluster = args[0]
	case t.inventory == "":
		return sel, fmt.Errorf("name a cluster (a dir under %s/clusters) or pass -i INVENTORY", g.Base)
	}
	return sel, nil
}

// restoreFlags are shared by restore and plan: plan is restore that stops before its first change.
type restoreFlags struct {
	targetFlags
	snapshot       string
	playbook       string
	token          string
	fromStep       string
	noBumpRevision bool
	healthTimeout  time.Duration
	expect         []string
	noAPICheck     bool
	ageIdentity    string
}

func (f *restoreFlags) add(c *cobra.Command, g *Globals) {
	f.targetFlags.add(c, g)
	c.Flags().StringVar(&f.snapshot, "snapshot", "", "snapshot to restore: a path, a file name in the cluster's backup/, latest, or before:<RFC3339 time> (default snapshot.db); or s3://BUCKET/PREFIX[/NAME|latest|before:<time>], downloaded and checked first; or member:HOST or member:freshest, a surviving member's own db, read on its host and copied once etcd is stopped there (majority lost)")
	c.Flags().StringVar(&f.ageIdentity, "age-identity", "", "age identity file (or unencrypted SSH private key) that decrypts an encrypted offsite --snapshot")
	c.Flags().StringVar(&f.playbook, "playbook", "", "a restore playbook to use instead of the built-in one")
	c.Flags().StringVar(&f.token, "initial-cluster-token", "", "token of the restored cluster (default: a fresh etcd-restore-<UTC time>; with --from-step the resumed run's)")
	c.Flags().StringVar(&f.fromStep, "from-step", "", "start at this step of the playbook (resume a failed run)")
	c.Flags().BoolVar(&f.noBumpRevision, "no-bump-revision", false, "do not raise revisions past the snapshot's (by default they jump 1e9 so Kubernetes watchers relist)")
	c.Flags().DurationVar(&f.healthTimeout, "health-timeout", 120*time.Second, "how long to wait for the restored cluster to be healthy")
	c.Flags().StringArrayVar(&f.expect, "expect", nil, "an object that must be back after the restore, KIND/NAMESPACE/NAME (e.g. pod/default/net-test3; repeatable): plan says whether the snapshot holds it, restore reads it back through the Kubernetes API")
	c.Flags().BoolVar(&f.noAPICheck, "no-api-check", false, "do not check the restore through the Kubernetes API (/readyz of every master, --expect read-backs)")
	_ = c.RegisterFlagCompletionFunc("snapshot", completeSnapshots(g))
	_ = c.RegisterFlagCompletionFunc("from-step", completeSteps)
}

func (f *restoreFlags) request(g *Globals, args []string) (restore.Request, error) {
	sel, err := f.targetFlags.selector(g, args)
	req := restore.Request{Target: sel, Forks: f.forks}
	req.Snapshot, req.Playbook, req.Token, req.FromStep = f.snapshot, f.playbook, f.token, f.fromStep
	req.NoBumpRevision, req.HealthTimeout = f.noBumpRevision, f.healthTimeout
	req.Expect, req.NoAPICheck = f.expect, f.noAPICheck
	req.AgeIdentity = f.ageIdentity
	return req, err
}

func newRestoreCmd(g *Globals) *cobra.Command {
	f := &restoreFlags{}
	var yes, breakLock, verbose bool
	c := &cobra.Command{
		Use:   "restore [CLUSTER]",
		Short: "Restore the cluster's etcd from one snapshot on every member, verified",
		Example: `  ezrestore restore k8s-01 --snapshot latest
  ezrestore restore k8s-01 --snapshot snapshot_202611210300.db --yes
  ezrestore restore k8s-01 --snapshot before:2026-11-21T03:00:00Z
  ezrestore restore k8s-01 --snapshot snapshot.db --from-step 'wait for etcd health'
  ezrestore restore -i inventory/mycluster/hosts.yaml -e ETCD_DATA_DIR=/data/etcd --snapshot /backups/etcd.db`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			req, err := f.request(g, args)
			if err != nil {
				return err
			}
			req.Yes, req.Out = yes, c.OutOrStdout()
			if term.IsTerminal(int(os.Stdin.Fd())) {
				req.Confirm = askYes
			}
			lock, err := restore.LockCluster(req.Target, restore.LockOptions{Command: "restore", Break: breakLock, Out: c.OutOrStdout()})
			if err != nil {
				return lockError(err)
			}
			defer lock.Release(c.Context())
			s, err := restore.Prepare(c.Context(), req)
			if err != nil {
				return err
			}
			defer s.Close()
			s.Lock = lock
			if verbose {
				s.Plan.WriteText(c.OutOrStdout())
			} else {
				s.WriteSummary(c.OutOrStdout())
			}
			_, err = s.Execute(c.Context())
			return lockError(err)
		},
	}
	f.add(c, g)
	c.Flags().BoolVar(&yes, "yes", false, "do not ask for a typed yes (needed without a terminal)")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the whole plan (every command on every host, as `plan` does) instead of its summary")
	addBreakLock(c, &breakLock)
	return c
}

// exitLocked is the exit status of a run refused because another holds the cluster's lock.
const exitLocked = 3

// lockError gives a refusal by the run lock its own exit status.
func lockError(err error) error {
	var held *runlock.HeldError
	if err != nil && errors.As(err, &held) {
		return &ExitError{Code: exitLocked, Err: err}
	}
	return err
}

func addBreakLock(c *cobra.Command, v *bool) {
	c.Flags().BoolVar(v, "break-lock", false, "take over the cluster's run lock when it looks stale (its holder's pid is gone or its heartbeat is old); a live lock is never taken")
}

func askYes(summary string) (bool, error) {
	fmt.Fprintf(os.Stderr, "\n%s\nType yes to go on: ", summary)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	return strings.TrimSpace(line) == "yes", nil
}

func newPlanCmd(g *Globals) *cobra.Command {
	f := &restoreFlags{}
	var output string
	c := &cobra.Command{
		Use:   "plan [CLUSTER]",
		Short: "Show exactly what restore would run on which host; changes nothing",
		Example: `  ezrestore plan k8s-01 --snapshot latest
  ezrestore plan k8s-01 --snapshot snapshot_202611210300.db -o json
  ezrestore plan -i hosts.ini --snapshot /backups/etcd.db --playbook my-restore.yml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			req, err := f.request(g, args)
			if err != nil {
				return err
			}
			req.Out = os.Stderr
			// plan takes no lock, but a run in progress changes what it shows.
			if held := restore.LockHeld(req.Target); held != "" {
				fmt.Fprintf(os.Stderr, "Warning: %s\n", held)
			}
			s, err := restore.Prepare(c.Context(), req)
			if err != nil {
				return err
			}
			defer s.Close()
			if output != "text" {
				return printData(c.OutOrStdout(), output, s.Plan, nil)
			}
			s.Plan.WriteText(c.OutOrStdout())
			fmt.Fprintln(c.OutOrStdout())
			fmt.Fprint(c.OutOrStdout(), s.SetAsideText())
			return nil
		},
	}
	f.add(c, g)
	addOutput(c, &output)
	return c
}

func newStatusCmd(g *Globals) *cobra.Command {
	t := &targetFlags{}
	var output string
	c := &cobra.Command{
		Use:   "status [CLUSTER]",
		Short: "Ask every etcd member for its view of the cluster and judge its health",
		Example: `  ezrestore status k8s-01
  ezrestore status k8s-01 -o json
  ezrestore status -i inventory/mycluster/hosts.yaml --accept-new-host-keys`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			sel, err := t.selector(g, args)
			if err != nil {
				return err
			}
			r, err := restore.Status(c.Context(), sel, t.forks)
			if err != nil {
				return err
			}
			if err := printData(c.OutOrStdout(), output, r, func() error { r.WriteTable(c.OutOrStdout()); return nil }); err != nil {
				return err
			}
			if !r.Verdict.Healthy {
				return &ExitError{Code: 2, Err: fmt.Errorf("cluster %s is not healthy: %s", r.Cluster, r.Verdict.Summary)}
			}
			return nil
		},
	}
	t.add(c, g)
	addOutput(c, &output)
	return c
}
