package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/backup"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/snapshot"
)

func newBackupCmd(g *Globals) *cobra.Command {
	t := &targetFlags{}
	var keep int
	var output string
	var breakLock bool
	c := &cobra.Command{
		Use:   "backup [CLUSTER]",
		Short: "Take a verified etcd backup into the cluster's backup dir",
		Example: `  ezrestore backup k8s-01
  ezrestore backup k8s-01 --keep 14
  ezrestore backup -i inventory/mycluster/hosts.yaml -o json`,
		Long: `Takes an etcd snapshot from the first healthy member of the cluster's etcd
group (unreachable or unhealthy members are skipped and reported), over SSH
with the host's own etcdctl and the inventory's TLS files (ca_dir), downloads
it, and verifies it: the same bytes as on the host, etcd's sha256 trailer, and
an etcd database with a revision. It is filed, mode 0600, as

  <base>/clusters/CLUSTER/backup/snapshot_<YYYYmmddHHMM>.db   (kubeasz's naming)
  <base>/clusters/CLUSTER/backup/snapshot_<YYYYmmddHHMM>.db.json   (metadata)

and snapshot.db is refreshed to a copy of it. A second backup in the same
minute gets the suffix -2, -3, ...; nothing is ever overwritten. --keep N
removes the oldest snapshot_<time>.db files beyond the newest N, never the
newest nor the one snapshot.db copies. With no healthy member reachable
nothing is written and the command fails, listing each member's reason.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := t.selector(g, args)
			if err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			res, err := backup.Take(cmd.Context(), backup.Options{
				Target:    sel,
				Forks:     t.forks,
				Keep:      keep,
				Log:       func(f string, a ...any) { fmt.Fprintf(errOut, f+"\n", a...) },
				Progress:  downloadProgress,
				BreakLock: breakLock,
			})
			err = lockError(err)
			out := cmd.OutOrStdout()
			if output != "text" {
				if perr := printData(out, output, jsonResult(res, err), nil); perr != nil {
					return perr
				}
				return err
			}
			if res == nil {
				return err
			}
			s := res.Sidecar
			fmt.Fprintf(out, "backup %s\n", res.Path)
			fmt.Fprintf(out, "  from %s (etcd %s) at %s\n", s.SourceHost, orUnknown(s.EtcdVersion), snapshot.FormatTime(s.Time))
			fmt.Fprintf(out, "  revision %d, %d keys, %s, sha256 %s (trailer verified)\n", s.Revision, s.Keys, orchestrator.HumanBytes(s.Size), s.SHA256)
			fmt.Fprintf(out, "  %s now copies it\n", snapshot.LatestName)
			for _, sk := range res.Skipped {
				fmt.Fprintf(out, "  skipped member %s\n", sk)
			}
			for _, p := range res.Pruned {
				fmt.Fprintf(out, "  pruned %s\n", p)
			}
			return err
		},
	}
	t.add(c, g)
	addBreakLock(c, &breakLock)
	c.Flags().IntVar(&keep, "keep", 0, "keep only the newest N backups (0: keep all)")
	addOutput(c, &output)
	return c
}

func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}

// jsonResult is a backup in the output vocabulary; a failed one has an
// error field and the members tried.
func jsonResult(r *backup.Result, err error) any {
	type skip struct {
		Host   string `json:"host" yaml:"host"`
		Member string `json:"member" yaml:"member"`
		Error  string `json:"error" yaml:"error"`
	}
	out := struct {
		Path    string            `json:"path,omitempty" yaml:"path,omitempty"`
		Meta    *snapshot.Sidecar `json:"meta,omitempty" yaml:"meta,omitempty"`
		Skipped []skip            `json:"skipped" yaml:"skipped"`
		Pruned  []string          `json:"pruned" yaml:"pruned"`
		Error   string            `json:"error,omitempty" yaml:"error,omitempty"`
	}{Skipped: []skip{}, Pruned: []string{}}
	var skipped []backup.HostError
	if r != nil {
		out.Path, out.Meta, skipped = r.Path, &r.Sidecar, r.Skipped
		if r.Pruned != nil {
			out.Pruned = r.Pruned
		}
	}
	var nm interface{ SkippedHosts() []backup.HostError }
	if errors.As(err, &nm) {
		skipped = nm.SkippedHosts()
	}
	for _, s := range skipped {
		out.Skipped = append(out.Skipped, skip{s.Host, s.Member, s.Err.Error()})
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// downloadProgress draws a progress bar on stderr when it is a terminal.
func downloadProgress(title string, size int64) (func(int64), func()) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return func(int64) {}, func() {}
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(title),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { io.WriteString(os.Stderr, "\n") }),
	)
	return func(n int64) { _ = bar.Set64(n) }, func() { _ = bar.Finish() }
}
