package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/playbooks"
	"github.com/ezrestore/ezrestore/snapshot"
)

// rootLong is the first thing an operator reads at night: what to run, in order.
const rootLong = `ezrestore brings a Kubernetes cluster's etcd back from one snapshot, over
SSH, from the bastion that holds your kubeasz or Ansible inventory.

In an emergency, in this order:
  1. ezrestore status CLUSTER              is etcd healthy? which members answer?
  2. ezrestore snapshots CLUSTER           which backups exist (or: ezrestore snapshot find
                                            net-test3 --cluster CLUSTER: which still holds it)
  3. ezrestore plan CLUSTER --snapshot F   exactly what a restore would run, where; changes nothing
  4. ezrestore restore CLUSTER --snapshot F
  5. if it fails: the message says what is stopped where, and the two ways out:
     --from-step STEP to go on, or ezrestore rollback CLUSTER --run RUN to go back.

CLUSTER is a dir under <base>/clusters (kubeasz's layout, --base, default
/etc/kubeasz); any Ansible inventory works with -i FILE instead.`

// Command groups in the root help.
const (
	groupEmergency = "emergency"
	groupBackup    = "backup"
	groupInspect   = "inspect"
	groupRehearse  = "rehearse"
)

func addGroups(root *cobra.Command) {
	root.AddGroup(
		&cobra.Group{ID: groupEmergency, Title: "Bring etcd back:"},
		&cobra.Group{ID: groupBackup, Title: "Backups and snapshots:"},
		&cobra.Group{ID: groupInspect, Title: "Look before you act (offline):"},
		&cobra.Group{ID: groupRehearse, Title: "Rehearsal and development (not for production hosts):"},
	)
}

// Build information; the Makefile stamps version with -ldflags.
var version = "dev"

func versionString() string {
	commit, dirty := "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (modified)"
				}
			}
		}
	}
	v := "ezrestore " + version
	if commit != "" {
		v += ", commit " + commit + dirty
	}
	return fmt.Sprintf("%s, %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Completion.

// completeClusters offers the cluster names under --base.
func completeClusters(g *Globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		entries, err := os.ReadDir(filepath.Join(baseFrom(cmd, g), "clusters"))
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), toComplete) {
				out = append(out, e.Name())
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// baseFrom is --base as typed so far on the command line being completed.
func baseFrom(cmd *cobra.Command, g *Globals) string {
	if f := cmd.Flags().Lookup("base"); f != nil && f.Changed {
		return f.Value.String()
	}
	return g.Base
}

// completeSnapshots offers latest, before:, and the backups of the cluster
// named on the command line; files otherwise.
func completeSnapshots(g *Globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		out := []cobra.Completion{"latest", "before:"}
		if len(args) == 1 {
			dir := inventory.NewClusterDir(baseFrom(cmd, g), args[0]).BackupDir()
			if es, err := snapshot.List(dir); err == nil {
				for _, e := range es {
					out = append(out, filepath.Base(e.Path))
				}
			}
		}
		var keep []cobra.Completion
		for _, c := range out {
			if strings.HasPrefix(c, toComplete) {
				keep = append(keep, c)
			}
		}
		return keep, cobra.ShellCompDirectiveDefault
	}
}

// completeSteps offers the built-in playbook's step names (for --from-step).
func completeSteps(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	names, err := playbooks.StepNames(playbooks.Restore)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func completeValues(values ...string) cobra.CompletionFunc {
	sort.Strings(values)
	return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
}
