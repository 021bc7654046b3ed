package cmd

// `ezrestore snapshot get` and `snapshot ls`: a snapshot read as Kubernetes objects.

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ezrestore/ezrestore/objects"
	"github.com/ezrestore/ezrestore/snapshot"
)

// snapshotSource is how the object commands name a snapshot: a FILE argument
// (local or offsite), or --cluster C [--snapshot S] as restore takes it.
type snapshotSource struct {
	cluster, spec, identity string
}

func (s *snapshotSource) add(c *cobra.Command) {
	c.Flags().StringVar(&s.cluster, "cluster", "", "read a backup of this cluster (<base>/clusters/<name>/backup) instead of a FILE")
	c.Flags().StringVar(&s.spec, "snapshot", "", `with --cluster: which backup, as restore takes it ("" snapshot.db, latest, before:<RFC3339>, a file name)`)
	addIdentity(c, &s.identity)
}

// open returns a local file for the snapshot and a func that removes any
// temp copy; file is the FILE argument ("" when --cluster names it).
func (s *snapshotSource) open(cmd *cobra.Command, g *Globals, file string) (string, func(), error) {
	switch {
	case s.cluster != "" && file != "":
		return "", nil, errors.New("name a snapshot FILE or --cluster, not both")
	case s.cluster != "":
		path, how, err := snapshot.Resolve(g.ClusterDir(s.cluster).BackupDir(), s.spec)
		if err != nil {
			return "", nil, fmt.Errorf("cluster %s: %w", s.cluster, err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "reading %s\n", how)
		return path, func() {}, nil
	case s.spec != "":
		return "", nil, errors.New("--snapshot goes with --cluster; to read a file, name it")
	case file == "":
		return "", nil, errors.New("name a snapshot FILE, or --cluster NAME [--snapshot S]")
	}
	return localSnapshot(cmd, file, s.identity)
}

func addEncryptionConfig(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "encryption-config", "", "the apiserver's EncryptionConfiguration file (--encryption-provider-config): decrypts values encrypted at rest (aescbc, aesgcm, secretbox)")
}

func decoderFor(path string) (*objects.Decoder, error) {
	if path == "" {
		return &objects.Decoder{}, nil
	}
	cfg, err := objects.ParseEncryptionConfig(path)
	if err != nil {
		return nil, err
	}
	return &objects.Decoder{Encryption: cfg}, nil
}

func newSnapshotGetCmd(g *Globals) *cobra.Command {
	var src snapshotSource
	var output, key, encConfig string
	c := &cobra.Command{
		Use:   "get RESOURCE/NAMESPACE/NAME [FILE]",
		Short: "One Kubernetes object from a snapshot, as kubectl get -o yaml shows it",
		Example: `  ezrestore snapshot get pod/default/net-test3 backup/snapshot.db
  ezrestore snapshot get deployment/web/front --cluster k8s-01 --snapshot latest -o json
  ezrestore snapshot get namespace//team-a backup/snapshot.db
  ezrestore snapshot get --key /registry/services/specs/default/kubernetes backup/snapshot.db`,
		Long: `Reads one object from an etcd snapshot offline and prints it as YAML (or
JSON with -o json), decoded with the Kubernetes project's own types;
metadata.resourceVersion is the key's mod revision, as the apiserver shows it.

The object: RESOURCE/NAMESPACE/NAME (pod/default/web-0, deployment/web/front,
widgets.example.com/team-a/w1), RESOURCE//NAME or RESOURCE/NAME for a
cluster-scoped one (namespace//team-a, node/n1), or a raw etcd key with --key.
RESOURCE is any name kubectl takes: plural, singular, short (po, deploy, svc).

A value encrypted at rest is named (provider and key) and not shown;
--encryption-config with the apiserver's EncryptionConfiguration decrypts it.`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var refArg, file string
			switch {
			case key != "" && len(args) <= 1:
				refArg = key
				if len(args) == 1 {
					file = args[0]
				}
			case key != "":
				return errors.New("with --key, name at most a FILE")
			case len(args) == 0:
				return errors.New("name the object: RESOURCE/NAMESPACE/NAME (or --key KEY)")
			default:
				refArg = args[0]
				if len(args) == 2 {
					file = args[1]
				}
			}
			ref, err := objects.ParseRef(refArg)
			if err != nil {
				return err
			}
			dec, err := decoderFor(encConfig)
			if err != nil {
				return err
			}
			path, done, err := src.open(cmd, g, file)
			if err != nil {
				return err
			}
			defer done()
			o, err := snapshot.GetObject(path, ref, dec)
			if err != nil {
				return err
			}
			var b []byte
			if output == "json" {
				b, err = o.JSON()
			} else {
				b, err = o.YAML()
			}
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	c.Flags().StringVar(&key, "key", "", "a raw etcd key instead of RESOURCE/NAMESPACE/NAME")
	c.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	_ = c.RegisterFlagCompletionFunc("output", completeValues("yaml", "json"))
	c.PreRunE = func(*cobra.Command, []string) error {
		if output != "yaml" && output != "json" {
			return fmt.Errorf("-o %q: snapshot get prints yaml or json", output)
		}
		return nil
	}
	addEncryptionConfig(c, &encConfig)
	src.add(c)
	return c
}

func newSnapshotLsCmd(g *Globals) *cobra.Command {
	var src snapshotSource
	var output, namespace string
	c := &cobra.Command{
		Use:   "ls FILE [RESOURCE]",
		Short: "The Kubernetes objects a snapshot holds, one line each",
		Example: `  ezrestore snapshot ls backup/snapshot.db pods -n default
  ezrestore snapshot ls --cluster k8s-01 --snapshot latest deployments
  ezrestore snapshot ls backup/snapshot.db -o json`,
		Long: `Lists the objects live in an etcd snapshot, read offline: kind, namespace,
name, and the revisions the key was created and last modified at. RESOURCE
(pods, deploy, widgets.example.com) and -n NAMESPACE narrow the list. With
--cluster C [--snapshot S] the snapshot is a backup of that cluster, and the
only argument is RESOURCE.`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var file, resArg string
			switch {
			case src.cluster != "" && len(args) == 2:
				return errors.New("with --cluster, the only argument is RESOURCE")
			case src.cluster != "" && len(args) == 1:
				resArg = args[0]
			case len(args) >= 1:
				file = args[0]
				if len(args) == 2 {
					resArg = args[1]
				}
			}
			var res *objects.Resource
			if resArg != "" {
				r, err := objects.Lookup(resArg)
				if err != nil {
					return err
				}
				res = r
			}
			path, done, err := src.open(cmd, g, file)
			if err != nil {
				return err
			}
			defer done()
			list, err := snapshot.ListObjects(path, res, namespace)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return printData(out, output, list, func() error {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KIND\tNAMESPACE\tNAME\tCREATED\tMODIFIED")
				for _, e := range list {
					ns := e.Namespace
					if ns == "" {
						ns = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", e.Kind, ns, e.Name, e.Created, e.Modified)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().StringVarP(&namespace, "namespace", "n", "", "only objects of this namespace")
	addOutput(c, &output)
	src.add(c)
	return c
}
