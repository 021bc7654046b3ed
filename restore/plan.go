package restore

import (
	"fmt"
	"io"
	"strings"

	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/steps"
)

// Plan is a restore's plan: the engine's steps and commands, with what is
// particular to a restore (the snapshot, the token, the members to be).
type Plan struct {
	Snapshot steps.SnapshotRef  `json:"snapshot"`
	Token    string             `json:"initial_cluster_token"`
	Members  []steps.MemberPlan `json:"members"`
	// MemberSource is how the member was chosen (--snapshot member:...).
	MemberSource *MemberSource `json:"member_source,omitempty"`
	// Undo is what the restore would undo on the live cluster (undo.go).
	Undo *Undo `json:"undo,omitempty"`
	*orchestrator.Plan
}

// WriteText prints the plan for a person: the snapshot, the members after the
// restore, then what runs where, in order.
func (p *Plan) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Restore plan for %s (inventory %s, playbook %s)\n", p.Cluster, p.Inventory, p.Plan.Playbook)
	s := p.Snapshot
	trailer := "sha256 trailer verified"
	if !s.HasTrailer {
		trailer = "no sha256 trailer (a copy of member/snap/db): restored with --skip-hash-check"
	}
	if p.MemberSource != nil {
		p.writeMemberSource(w)
	} else {
		fmt.Fprintf(w, "Snapshot: %s\n  %s; %s, %s, revision %d\n  sha256 %s; %s\n",
			s.Path, s.How, s.ModTime.UTC().Format("2006-01-02 15:04:05 UTC"), bytesize.Human(s.Size), s.Revision, s.SHA256, trailer)
	}
	fmt.Fprintf(w, "Run %s, initial cluster token %s\n", p.RunID, p.Token)
	fmt.Fprintln(w, "Members after the restore:")
	for _, m := range p.Members {
		fmt.Fprintf(w, "  %-22s %-28s on %s", m.Name, m.PeerURL, m.Host)
		if m.Tool != "" {
			fmt.Fprintf(w, "  [%s]", m.Tool)
		}
		fmt.Fprintln(w)
		for _, n := range m.Notes {
			fmt.Fprintf(w, "      note: %s\n", n)
		}
	}
	p.Plan.WriteText(w)
	if p.Undo != nil {
		fmt.Fprintln(w)
		p.Undo.WriteText(w)
	}
}

// SetAsideText lists, per etcd host, what the swap moves aside and the
// command that puts it back.
func SetAsideText(r *steps.Restore) string {
	var b strings.Builder
	b.WriteString("Old etcd data is kept, never deleted. Per host, what is set aside and how to put it back:\n")
	for _, sa := range r.SetAsides() {
		fmt.Fprintf(&b, "  %s: %s\n    put back: %s\n", sa.Host, strings.Join(sa.Paths, ", "), sa.PutBack)
	}
	b.WriteString("To go back, run `ezrestore rollback` (it does all of this for the newest run that set data aside),\n" +
		"or run each put-back command on its host, on every etcd host (they start etcd without waiting), then check with `ezrestore status`.\n")
	return b.String()
}
