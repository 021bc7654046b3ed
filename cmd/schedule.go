package cmd

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ezrestore/ezrestore/backup"
	"github.com/ezrestore/ezrestore/seal"
)

// scheduledFlags are the backup flags a schedule passes on to the backup it
// runs; those naming files are made absolute.
var scheduledFlags = map[string]bool{
	"extra-vars": false, "private-key": true, "forks": false, "accept-new-host-keys": false,
	"to": false, "age-recipient": false, "age-recipients-file": true,
	"keep": false, "keep-last": false, "keep-hourly": false, "keep-daily": false, "keep-weekly": false,
	"keep-monthly": false, "keep-yearly": false, "verify-restore": false, "etcd-bin": true,
	"metrics-file": true, "include-ssh-key": false,
}

func newBackupScheduleCmd(g *Globals) *cobra.Command {
	t := &targetFlags{}
	var keep retentionFlags
	var off offsiteFlags
	var every, envFile, unitDir, etcdBin, metricsFile string
	var print, remove, verifyRestore bool
	c := &cobra.Command{
		Use:   "schedule CLUSTER",
		Short: "Run backups from a systemd timer on this bastion (--print shows the units, --remove takes them away)",
		Example: `  ezrestore backup schedule k8s-01 --every 30m --to s3://etcd-backups/k8s-01 --age-recipient age1... --keep-daily 7 --keep-monthly 12
  ezrestore backup schedule k8s-01 --every daily --keep-last 14 --print
  ezrestore backup schedule k8s-01 --remove`,
		Long: `Writes /etc/systemd/system/ezrestore-backup-CLUSTER.service and .timer, reloads
systemd and starts the timer. The service is Type=oneshot and runs

  <this binary, absolute> --base <base> backup CLUSTER <the flags given here>

that is, the same backup as by hand, under the cluster's run lock; a failed
backup exits non-zero, so the journal (journalctl -u ezrestore-backup-CLUSTER)
and systemctl --failed show it, and each backup, good or failed, rewrites a
Prometheus textfile-collector file (--metrics-file; by default
ezrestore_backup_CLUSTER.prom in the first of /var/lib/prometheus/node-exporter,
/var/lib/node_exporter/textfile_collector, /var/lib/node_exporter that exists,
else in the cluster dir). --every is a period (30m, 6h: the timer runs
the backup that long after the last one started, and once after boot) or a
systemd calendar expression (hourly, daily, '*-*-* 02:00': wall-clock times,
caught up after the bastion was down).

Credentials for --to do not go in the unit (it is world-readable): put the
AWS_* settings in --env-file (default /etc/ezrestore/backup-CLUSTER.env,
mode 0600), which the service reads when it exists, or in the ~/.aws of the
user the service runs as (--user, default the one running this).

--print shows both units and writes nothing; --remove stops and disables
the timer, removes both files and reloads systemd.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeClusters(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			s := backup.Schedule{Cluster: name, Every: every, Dir: unitDir}
			out := cmd.OutOrStdout()
			if remove {
				removed, err := s.Remove(cmd.Context())
				for _, p := range removed {
					fmt.Fprintf(out, "removed %s\n", p)
				}
				if err == nil && len(removed) == 0 {
					fmt.Fprintf(out, "no schedule for cluster %s\n", name)
				}
				return err
			}
			// What the backup will need, checked now rather than at 3 a.m.
			if _, err := keep.policy(); err != nil {
				return err
			}
			if _, err := seal.ParseRecipients(off.recipients, off.recipientFiles); err != nil {
				return err
			}
			if (len(off.recipients) > 0 || len(off.recipientFiles) > 0) && off.to == "" {
				return errors.New("--age-recipient encrypts the offsite copy: give --to s3://BUCKET/PREFIX too")
			}
			if _, err := os.Stat(g.ClusterDir(name).Path); err != nil {
				return fmt.Errorf("cluster %s: %w", name, err)
			}
			command, err := scheduledCommand(cmd, g, name)
			if err != nil {
				return err
			}
			// Every scheduled backup reports, by default where node
			// exporter's textfile collector reads.
			if metricsFile == "" {
				dir, err := filepath.Abs(g.ClusterDir(name).Path)
				if err != nil {
					return err
				}
				command = append(command, "--metrics-file", backup.DefaultMetricsFile(dir, name))
			}
			s.Command = command
			if envFile == "" {
				envFile = "/etc/ezrestore/backup-" + name + ".env"
			}
			s.EnvFile = envFile
			if u, err := user.Current(); err == nil {
				s.User = u.Username
			}
			if print {
				svc, tmr, err := s.Units()
				if err != nil {
					return err
				}
				sp, tp, _ := s.Paths()
				fmt.Fprintf(out, "# %s\n%s\n# %s\n%s", sp, svc, tp, tmr)
				return nil
			}
			sp, tp, err := s.Install(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "wrote %s\nwrote %s\ntimer started: systemctl list-timers %s; last runs: journalctl -u %s\n",
				sp, tp, filepath.Base(tp), filepath.Base(sp))
			return nil
		},
	}
	t.add(c, g)
	_ = c.Flags().MarkHidden("inventory") // a schedule names a kubeasz cluster
	keep.add(c, true)
	off.add(c)
	c.Flags().BoolVar(&verifyRestore, "verify-restore", false, "each scheduled backup proves it restores (see ezrestore backup --help)")
	c.Flags().StringVar(&etcdBin, "etcd-bin", "", "dir with etcd and etcdutl for --verify-restore")
	var includeSSHKey bool
	c.Flags().BoolVar(&includeSSHKey, "include-ssh-key", false, "with --to: each backup packs the SSH private keys into the rebuild kit too")
	c.Flags().StringVar(&metricsFile, "metrics-file", "", "the Prometheus textfile-collector file each backup rewrites (default "+backup.MetricsFileName("CLUSTER")+" in the first of "+strings.Join(backup.TextfileDirs, ", ")+" that exists, else in the cluster dir)")
	c.Flags().StringVar(&every, "every", "", "how often: a period (30m, 6h) or a systemd calendar expression (hourly, daily, '*-*-* 02:00')")
	c.Flags().StringVar(&envFile, "env-file", "", "environment file the service reads when it exists, for AWS_* credentials (default /etc/ezrestore/backup-CLUSTER.env)")
	c.Flags().StringVar(&unitDir, "unit-dir", backup.UnitDir, "where the units are written")
	c.Flags().BoolVar(&print, "print", false, "show the service and the timer; write nothing")
	c.Flags().BoolVar(&remove, "remove", false, "stop and disable the timer and remove both units")
	return c
}

// scheduledCommand is the backup command line the service runs: this
// binary, the base dir, and the backup flags given to schedule.
func scheduledCommand(cmd *cobra.Command, g *Globals, cluster string) ([]string, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot tell this binary's path for the service: %w", err)
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		return nil, err
	}
	base, err := filepath.Abs(g.Base)
	if err != nil {
		return nil, err
	}
	argv := []string{bin, "--base", base, "backup", cluster}
	var ferr error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		isPath, ok := scheduledFlags[f.Name]
		if !ok || ferr != nil {
			return
		}
		values := []string{f.Value.String()}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			values = sv.GetSlice()
		}
		for _, v := range values {
			if isPath {
				if v, ferr = filepath.Abs(v); ferr != nil {
					return
				}
			}
			if f.Value.Type() == "bool" {
				argv = append(argv, "--"+f.Name+"="+v)
			} else {
				argv = append(argv, "--"+f.Name, v)
			}
		}
	})
	return argv, ferr
}
