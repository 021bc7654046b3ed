package cmd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/lab"
	"github.com/ezrestore/ezrestore/transport"
)

// labFlags is what every lab subcommand shares: the lab's name and the
// global flags (--base).
type labFlags struct {
	g    *Globals
	name string
}

// open opens the named lab, its messages going to the command's output.
func (lf *labFlags) open(cmd *cobra.Command) (*lab.Lab, error) {
	l, err := lab.Open(lf.name, lf.g.Base)
	if err != nil {
		return nil, err
	}
	l.SetOutput(cmd.OutOrStdout())
	return l, nil
}

func newLabCmd(g *Globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "lab",
		Short: "Run a kubeasz-style etcd cluster of real hosts (systemd-nspawn) on this machine",
		Example: `  ezrestore lab up --name demo
  ezrestore lab status --name demo
  ezrestore lab kill 127.40.81.12 --name demo
  ezrestore lab down --name demo`,
		Long: `The lab boots systemd-nspawn hosts with real systemd, sshd and a TLS etcd
cluster laid out as kubeasz lays it out, each host on its own 127.x.y.z address,
and writes the cluster dir <base>/clusters/<name>/. With --kube real (the
default) masters run the real kube-apiserver, kube-controller-manager and
kube-scheduler (built once per machine from the Go module proxy) and the lab
writes kubectl.kubeconfig and <base>/bin/kubectl; kubelet and kube-proxy are
always stand-ins (no container runtime). Needs root on Linux with debootstrap
and systemd-nspawn.`,
	}
	lf := &labFlags{g: g}
	c.PersistentFlags().StringVar(&lf.name, "name", "lab", "lab name (its cluster is <base>/clusters/<name>)")
	c.AddCommand(labUpCmd(lf), labDownCmd(lf), labStatusCmd(lf), labSSHCmd(lf), labKillCmd(lf), labStartCmd(lf),
		labBuildCmd(lf), labShapeCmd(lf), labUnshapeCmd(lf))
	return c
}

// labUpCmd is `lab up`: boot the hosts and wait until they serve.
func labUpCmd(lf *labFlags) *cobra.Command {
	var opts lab.Options
	up := &cobra.Command{
		Use:     "up",
		Short:   "Bring the lab up (returns when etcd is healthy, every unit active and, with --kube real, every apiserver ready)",
		Example: "  ezrestore lab up --name demo\n  ezrestore lab up --name t36 --etcd-version 3.6 --nodes 2",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Name, opts.Base, opts.Out = lf.name, lf.g.Base, cmd.OutOrStdout()
			l, err := lab.Up(cmd.Context(), opts)
			if err != nil {
				return err
			}
			var try []string
			for _, a := range l.SSHArgs(l.EtcdHosts()[0].Address) {
				try = append(try, transport.Quote(a))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\ncluster dir: %s\ntry: ssh %s\n", l.Dir.Path, strings.Join(try, " "))
			return nil
		},
	}
	up.Flags().IntVar(&opts.Etcd, "etcd", 3, "etcd members: 1, 3 or 5")
	up.Flags().IntVar(&opts.Nodes, "nodes", 2, "worker hosts (0 for none)")
	up.Flags().BoolVar(&opts.SeparateEtcd, "separate-etcd", false, "run etcd on hosts of its own, not on the masters")
	up.Flags().IntVar(&opts.Masters, "masters", 2, "masters with --separate-etcd")
	up.Flags().StringVar(&opts.EtcdWALDir, "etcd-wal-dir", "", "put etcd's WAL in this dir on the hosts (--wal-dir); empty keeps it in the data dir")
	up.Flags().BoolVar(&opts.JumpHost, "jump-host", false, "add a jump host: the other hosts accept SSH only from it, and the hosts file reaches them through it (ProxyJump)")
	up.Flags().StringVar(&opts.EtcdVersion, "etcd-version", "", "3.4 (Debian's), or 3.5, 3.6, 3.7 (latest patch, built from the Go module proxy); default 3.6 with --kube real, 3.4 with --kube stand-in")
	up.Flags().StringVar(&opts.Kube, "kube", lab.KubeReal, "control plane on masters: real (Kubernetes v"+lab.KubeVersion+", built once per machine) or stand-in (units that only stay alive; light)")
	up.PreRun = func(cmd *cobra.Command, _ []string) {
		if !cmd.Flags().Changed("nodes") {
			return
		}
		if opts.Nodes == 0 {
			opts.Nodes = -1 // Options: 0 means the default
		}
	}
	return up
}

// labDownCmd is `lab down`: leave nothing behind.
func labDownCmd(lf *labFlags) *cobra.Command {
	down := &cobra.Command{
		Use:     "down",
		Short:   "Stop every host, unmount, and remove the lab's state and cluster dir files",
		Example: "  ezrestore lab down --name demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lf.open(cmd)
			if err != nil {
				return err
			}
			if err := l.Unshape(cmd.Context()); err != nil {
				return err
			}
			return l.Down(cmd.Context())
		},
	}
	return down
}

// labStatusCmd is `lab status`: hosts, units and etcd health; exit 1 when not healthy.
func labStatusCmd(lf *labFlags) *cobra.Command {
	status := &cobra.Command{
		Use:     "status",
		Short:   "Show hosts, units and etcd health (exit 1 when not healthy)",
		Example: "  ezrestore lab status --name demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lf.open(cmd)
			if err != nil {
				return err
			}
			l.SetOutput(nil)
			w := cmd.OutOrStdout()
			kube := "control plane stand-ins"
			if l.Opts.Kube == lab.KubeReal {
				kube = "Kubernetes v" + lab.KubeVersion + " control plane"
			}
			fmt.Fprintf(w, "lab %s: etcd %s, %s, cluster dir %s\n", lf.name, l.EtcdRelease, kube, l.Dir.Path)
			ok := true
			for _, h := range l.Hosts {
				if !l.Running(h.Address) {
					fmt.Fprintf(w, "%-15s %-20s %-18s down\n", h.Address, h.Machine, strings.Join(h.Groups, ","))
					ok = false
					continue
				}
				st, err := l.UnitStates(cmd.Context(), h)
				if err != nil {
					fmt.Fprintf(w, "%-15s %-20s %-18s %v\n", h.Address, h.Machine, strings.Join(h.Groups, ","), err)
					ok = false
					continue
				}
				var parts []string
				for _, u := range h.Units() {
					parts = append(parts, u+"="+st[u])
					ok = ok && st[u] == "active"
				}
				fmt.Fprintf(w, "%-15s %-20s %-18s %s\n", h.Address, h.Machine, strings.Join(h.Groups, ","), strings.Join(parts, " "))
			}
			hl := l.EtcdHealth(cmd.Context())
			fmt.Fprintf(w, "etcd:\n%s", hl)
			if !ok || !hl.Healthy {
				return &ExitError{Code: 1, Err: errors.New("lab " + lf.name + " is not healthy")}
			}
			return nil
		},
	}
	return status
}

// labSSHCmd is `lab ssh`: OpenSSH to a host with the lab's key and known_hosts.
func labSSHCmd(lf *labFlags) *cobra.Command {
	sshCmd := &cobra.Command{
		Use:     "ssh HOST [-- CMD...]",
		Short:   "Run a command (or a shell) on a host as root over OpenSSH with the lab's key and known_hosts",
		Example: "  ezrestore lab ssh 127.40.81.11 --name demo -- systemctl status etcd",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lf.open(cmd)
			if err != nil {
				return err
			}
			h, err := l.Host(args[0])
			if err != nil {
				return err
			}
			sshArgs := l.SSHArgs(h.Address)
			if len(args) == 1 {
				sshArgs = append([]string{"-t"}, sshArgs...)
			} else {
				sshArgs = append(sshArgs, "--", strings.Join(args[1:], " "))
			}
			c := exec.CommandContext(cmd.Context(), "ssh", sshArgs...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return &ExitError{Code: ee.ExitCode(), Err: fmt.Errorf("ssh %s: %w", args[0], err)}
				}
				return err
			}
			return nil
		},
	}
	return sshCmd
}

// labKillCmd is `lab kill`: a power loss.
func labKillCmd(lf *labFlags) *cobra.Command {
	kill := &cobra.Command{
		Use:     "kill HOST",
		Short:   "Power a host off abruptly (SIGKILL to its whole process tree)",
		Example: "  ezrestore lab kill 127.40.81.12 --name demo   # power off, as a power loss",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lf.open(cmd)
			if err != nil {
				return err
			}
			return l.Kill(cmd.Context(), args[0])
		},
	}
	return kill
}

// labStartCmd is `lab start`: boot a killed host again.
func labStartCmd(lf *labFlags) *cobra.Command {
	start := &cobra.Command{
		Use:     "start HOST",
		Short:   "Boot a host again (returns when its sshd answers)",
		Example: "  ezrestore lab start 127.40.81.12 --name demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lf.open(cmd)
			if err != nil {
				return err
			}
			return l.Start(cmd.Context(), args[0])
		},
	}
	return start
}

// labBuildCmd is `lab build`: fill the caches only.
func labBuildCmd(lf *labFlags) *cobra.Command {
	var buildVersion, buildKube string
	build := &cobra.Command{
		Use:     "build",
		Short:   "Fill the caches `lab up` needs (base root filesystem, etcd, Kubernetes) without bringing a lab up",
		Example: "  ezrestore lab build",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.Preflight(); err != nil {
				return err
			}
			dir, err := lab.EnsureBase(cmd.Context(), cmd.OutOrStdout())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "base: %s\n", dir)
			switch buildKube {
			case lab.KubeReal:
				if buildVersion == "" {
					buildVersion = "3.6" // what `lab up --kube real` runs
				}
				kdir, err := lab.EnsureKube(cmd.Context(), cmd.OutOrStdout())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "kubernetes v%s: %s\n", lab.KubeVersion, kdir)
			case lab.KubeStandIn:
			default:
				return fmt.Errorf("--kube %q: use %s or %s", buildKube, lab.KubeReal, lab.KubeStandIn)
			}
			if buildVersion != "" && buildVersion != "3.4" {
				bin, rel, err := lab.EnsureEtcd(cmd.Context(), buildVersion, cmd.OutOrStdout())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "etcd %s: %s\n", rel, bin)
			}
			return nil
		},
	}
	build.Flags().StringVar(&buildVersion, "etcd-version", "", "also build this etcd minor (3.5, 3.6, 3.7); default 3.6 with --kube real")
	build.Flags().StringVar(&buildKube, "kube", lab.KubeReal, "real: also build Kubernetes v"+lab.KubeVersion+" (many minutes, once per machine); stand-in: do not")
	return build
}

// labShapeCmd is `lab shape`: a link of a given rate and delay to the hosts.
func labShapeCmd(lf *labFlags) *cobra.Command {
	var spec lab.ShapeSpec
	shape := &cobra.Command{
		Use:     "shape",
		Short:   "Put the bastion's SSH traffic to the lab's hosts behind a link of a given rate and delay (tc on lo)",
		Example: "  ezrestore lab shape --name demo --rate 1gbit --delay 2ms",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lf.open(cmd)
			if err != nil {
				return err
			}
			return l.Shape(cmd.Context(), spec)
		},
	}
	shape.Flags().StringVar(&spec.Rate, "rate", "1gbit", "link rate in tc's notation (1gbit, 100mbit)")
	shape.Flags().DurationVar(&spec.Delay, "delay", 2*time.Millisecond, "round-trip delay")
	return shape
}

// labUnshapeCmd is `lab unshape`.
func labUnshapeCmd(lf *labFlags) *cobra.Command {
	unshape := &cobra.Command{
		Use:     "unshape",
		Short:   "Remove the lab's link shaping (lab down does it too)",
		Example: "  ezrestore lab unshape --name demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lf.open(cmd)
			if err != nil {
				return err
			}
			return l.Unshape(cmd.Context())
		},
	}
	return unshape
}
