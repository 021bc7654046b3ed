package restore

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/steps"
)

// WriteSummary prints what a person reads before typing yes, in a size that
// grows with the etcd members but not with the workers: the snapshot, the
// members after the restore, one line per step, every warning and note that
// is not about a single host's commands, and what is set aside where. The
// whole plan (WriteText) stays in `plan`, `restore --verbose` and the run
// record's plan.txt.
func (s *Session) WriteSummary(w io.Writer) {
	p := s.Plan
	fmt.Fprintf(w, "Restore plan for %s (inventory %s, playbook %s)\n", p.Cluster, p.Inventory, p.Plan.Playbook)
	sn := p.Snapshot
	trailer := "sha256 trailer verified"
	if !sn.HasTrailer {
		trailer = "no sha256 trailer (a copy of member/snap/db): restored with --skip-hash-check"
	}
	fmt.Fprintf(w, "Snapshot: %s\n  %s; %s, revision %d, sha256 %s; %s\n",
		sn.Path, sn.How, bytesize.Human(sn.Size), sn.Revision, sn.SHA256, trailer)
	fmt.Fprintf(w, "Run %s, initial cluster token %s\n", p.RunID, p.Token)
	writeMembers(w, p.Members)
	p.Plan.WriteSummary(w)
	if sas := s.Restore.SetAsides(); len(sas) > 0 {
		fmt.Fprintln(w, "Set aside, never deleted (`ezrestore rollback` puts it back):")
		for _, sa := range sas {
			fmt.Fprintf(w, "  %s: %s\n", sa.Host, strings.Join(sa.Paths, ", "))
		}
	}
	fmt.Fprintf(w, "The whole plan, every command on every host: `ezrestore plan` or `restore --verbose`, and %s once the run starts.\n",
		filepath.Join(s.cluster.RecordDir, p.RunID, "plan.txt"))
}

// writeMembers lists the members after the restore; a note every member
// shares is printed once.
func writeMembers(w io.Writer, members []steps.MemberPlan) {
	fmt.Fprintln(w, "Members after the restore:")
	count := map[string]int{}
	for _, m := range members {
		for _, n := range m.Notes {
			count[n]++
		}
	}
	for _, m := range members {
		fmt.Fprintf(w, "  %-22s %-28s on %s", m.Name, m.PeerURL, m.Host)
		if m.Tool != "" {
			fmt.Fprintf(w, "  [%s]", m.Tool)
		}
		fmt.Fprintln(w)
		for _, n := range m.Notes {
			if len(members) < 2 || count[n] < len(members) {
				fmt.Fprintf(w, "      note: %s\n", n)
			}
		}
	}
	if len(members) < 2 {
		return
	}
	seen := map[string]bool{}
	for _, n := range members[0].Notes {
		if count[n] == len(members) && !seen[n] {
			seen[n] = true
			fmt.Fprintf(w, "  note (every member): %s\n", n)
		}
	}
}
