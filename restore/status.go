package restore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/steps"
)

// StatusReport is the health check the restore uses, on its own.
type StatusReport struct {
	Cluster string `json:"cluster"`
	// The verdict's fields (healthy, verdict, problems) sit at the top level.
	steps.Verdict
	Members []steps.MemberStatus `json:"members"`
}

// Status connects to the etcd hosts, reads their units (read-only) and asks
// every member for its own view of the cluster.
func Status(ctx context.Context, target cluster.Selector, forks int) (*StatusReport, error) {
	cl, err := cluster.Open(target)
	if err != nil {
		return nil, err
	}
	members, err := cl.Inventory.EtcdMembers()
	if err != nil {
		return nil, err
	}
	pool := cl.Connect(ctx, cl.Inventory.EtcdHosts(), forks)
	defer pool.Close()
	env := &orchestrator.Env{Cluster: cl.Name, Inventory: cl.Inventory, Conns: pool, Unreachable: pool.Failed(), Forks: forks}
	st := steps.ClusterStatus(ctx, env, members)
	return &StatusReport{Cluster: cl.Name, Members: st, Verdict: steps.Evaluate(st, members, 0)}, nil
}

// WriteTable prints one row per member and the verdict.
func (r *StatusReport) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tMEMBER ID\tNAME\tVERSION\tDB SIZE\tLEADER\tRAFT TERM\tRAFT INDEX\tREVISION\tERRORS")
	for _, m := range r.Members {
		if m.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", m.Endpoint, oneLine(m.Error))
			continue
		}
		leader := "no"
		if m.IsLeader() {
			leader = "yes"
		}
		fmt.Fprintf(tw, "%s\t%x\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", m.Endpoint, m.MemberID, m.Name(), m.Version,
			orchestrator.HumanBytes(m.DBSize), leader, m.RaftTerm, m.RaftIndex, m.Revision)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", r.Verdict.Summary)
	for _, p := range r.Verdict.Problems {
		if p != r.Verdict.Summary {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
