package cmd

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/inventory"
)

func newInventoryCmd(g *Globals) *cobra.Command {
	var (
		file      string
		extraVars []string
		output    string
	)
	c := &cobra.Command{
		Use:   "inventory [CLUSTER]",
		Short: "Show what an inventory targets, offline: groups, hosts, etcd members, warnings",
		Long: `Reads a kubeasz cluster's inventory (<base>/clusters/CLUSTER/hosts and
config.yml) or any Ansible inventory (-i), without connecting anywhere, and
shows its groups as a tree (as ansible-inventory --graph does), and per host
what ezrestore will use: address, port, user, become, key file, bin_dir, and
for etcd hosts the member name, peer and client URLs, data and WAL dirs,
each with the variable and file:line that set it. Warnings (an even etcd
member count, vault-encrypted vars files skipped, hosts in no group, member
names assumed for a kubespray inventory) are listed too.

The member names and dirs are what the inventory says; plan and restore
check them against each host's etcd unit before changing anything.`,
		Example: `  ezrestore inventory k8s-01
  ezrestore inventory -i inventory/mycluster/hosts.yaml -o json
  ezrestore inventory k8s-01 -e ETCD_DATA_DIR=/data/etcd -o yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := targetFlags{inventory: file, extraVars: extraVars}
			sel, err := t.selector(g, args)
			if err != nil {
				return err
			}
			cl, err := cluster.Open(sel)
			out := cmd.OutOrStdout()
			if err != nil {
				if output == "json" || output == "yaml" {
					where := file
					if where == "" {
						where = g.ClusterDir(args[0]).Hosts()
					}
					failed := &inventory.Description{File: where, Error: err.Error(), Hosts: []*inventory.HostDescription{}, Warnings: []string{}}
					if perr := printData(out, output, failed, nil); perr != nil {
						return perr
					}
				}
				return err
			}
			d := inventory.Describe(cl.Inventory)
			reach := cluster.DescribeReach(cl)
			for _, h := range d.Hosts {
				h.Reach = reach[h.Name]
			}
			return printData(out, output, d, func() error { return d.WriteText(out) })
		},
	}
	c.Flags().StringVarP(&file, "inventory", "i", "", "an Ansible inventory file (INI or YAML) instead of a kubeasz cluster name")
	c.Flags().StringArrayVarP(&extraVars, "extra-vars", "e", nil, "extra variables as ansible-playbook takes them: KEY=VALUE, @vars.yml or JSON (repeatable; later wins)")
	addOutput(c, &output)
	return c
}

func newClustersCmd(g *Globals) *cobra.Command {
	var output string
	var maxAge time.Duration
	c := &cobra.Command{
		Use:   "clusters",
		Short: "List the clusters under the base dir, with etcd hosts and last backup",
		Long: `Lists the kubeasz cluster dirs under <base>/clusters/ (--base, default
/etc/kubeasz): whether each has a hosts file, how many etcd hosts its
inventory names, its style (kubeasz or kubespray), how many backups
backup/snapshot_*.db holds, when the newest was written and how old it is
(file times; run ezrestore snapshot inspect to check one). A cluster whose
newest backup is older than --max-age (default 24h), or that has none, is
flagged STALE. Nothing is contacted.`,
		Example: `  ezrestore clusters
  ezrestore clusters --base /srv/kubeasz -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := inventory.ListClusters(g.Base)
			if err != nil {
				return err
			}
			inventory.FlagStale(list, maxAge, time.Now())
			out := cmd.OutOrStdout()
			return printData(out, output, list, func() error { return inventory.WriteClustersText(out, list) })
		},
	}
	c.Flags().DurationVar(&maxAge, "max-age", 24*time.Hour, "flag a cluster STALE when its newest backup is older than this")
	c.AddCommand(newClustersFetchCmd(g))
	addOutput(c, &output)
	return c
}
