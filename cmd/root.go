// Package cmd holds the cobra commands of ezrestore. Commands only turn flags
// into calls of the library packages; no logic of the product lives here.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/inventory"
)

// Globals are the flags every command shares.
type Globals struct {
	// Base is the kubeasz base dir: clusters live in <Base>/clusters/<name>/.
	Base string
}

// ClusterDir resolves a cluster name against the base dir.
func (g *Globals) ClusterDir(name string) inventory.ClusterDir {
	return inventory.NewClusterDir(g.Base, name)
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	g := &Globals{}
	root := &cobra.Command{
		Use:           "ezrestore",
		Short:         "Restore, back up and inspect Kubernetes etcd clusters over SSH",
		Long:          rootLong,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	addGroups(root)
	root.PersistentFlags().StringVar(&g.Base, "base", inventory.DefaultBase(),
		"kubeasz base dir holding clusters/<name>/ (env EZRESTORE_BASE)")
	// Every command, listed here once: a command exists because it is named
	// here, not because its file happens to be linked.
	for _, c := range []struct {
		group string
		cmd   *cobra.Command
	}{
		{groupEmergency, newStatusCmd(g)},
		{groupEmergency, newPlanCmd(g)},
		{groupEmergency, newRestoreCmd(g)},
		{groupEmergency, newRollbackCmd(g)},
		{groupEmergency, newRecoverCmd(g)},
		{groupEmergency, newDiffCmd(g)},
		{groupBackup, newBackupCmd(g)},
		{groupBackup, newSnapshotsCmd(g)},
		{groupBackup, newSnapshotCmd(g)},
		{groupBackup, newPruneCmd(g)},
		{groupInspect, newInventoryCmd(g)},
		{groupInspect, newClustersCmd(g)},
		{groupRehearse, newLabCmd(g)},
	} {
		c.cmd.GroupID = c.group
		root.AddCommand(c.cmd)
	}
	return root
}

// ExitError carries a specific exit status out of a command (for example
// `status` exits 1 on an unhealthy cluster without it being a usage error).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Execute runs the command line and returns the process exit status.
// Ctrl-C and SIGTERM cancel the context; long-running commands stop between steps.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := NewRoot().ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "ezrestore:", err)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}
