package diff

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText prints the result for an operator: counts first (what a restore
// to From would do to To), then the counts per resource and namespace, then
// the names, at most limit per list (limit < 0: all of them; 0: none).
func (r *Result) WriteText(w io.Writer, limit int) {
	fmt.Fprintf(w, "from %s (revision %d) to %s (revision %d):\n", r.From.Name, r.From.Revision, r.To.Name, r.To.Revision)
	if r.Total.Total() == 0 {
		fmt.Fprintf(w, "  no object created, deleted or modified")
	} else {
		fmt.Fprintf(w, "  %s created since: a restore deletes them\n", objectsN(r.Total.Created))
		fmt.Fprintf(w, "  %s deleted since: a restore brings them back\n", objectsN(r.Total.Deleted))
		fmt.Fprintf(w, "  %s modified since: a restore reverts them", objectsN(r.Total.Modified))
	}
	fmt.Fprintln(w)
	ev, le := r.Apart["events"], r.Apart["leases"]
	fmt.Fprintf(w, "  apart, not listed: events %d created, %d deleted, %d modified; leases %d created, %d deleted, %d modified\n",
		ev.Created, ev.Deleted, ev.Modified, le.Created, le.Deleted, le.Modified)
	if len(r.Groups) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOURCE\tNAMESPACE\tCREATED\tDELETED\tMODIFIED")
		for _, g := range r.Groups {
			res, ns := g.Resource, g.Namespace
			if res == "" {
				res = "(not an object key)"
			}
			if ns == "" {
				ns = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", res, ns, g.Created, g.Deleted, g.Modified)
		}
		tw.Flush()
	}
	if limit == 0 {
		return
	}
	for _, l := range []struct {
		title string
		list  []Change
	}{
		{"created since (a restore deletes them)", r.Created},
		{"deleted since (a restore brings them back)", r.Deleted},
		{"modified since (a restore reverts them)", r.Modified},
	} {
		if len(l.list) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", l.title)
		for i, c := range l.list {
			if limit > 0 && i == limit {
				fmt.Fprintf(w, "  ... and %d more (all of them with -o json or -o yaml)\n", len(l.list)-limit)
				break
			}
			note := ""
			if c.Recreated {
				note = "  (deleted and created again: another object under the same name)"
			}
			fmt.Fprintf(w, "  %s%s\n", c.Ref(), note)
		}
	}
}

func objectsN(n int) string {
	if n == 1 {
		return "1 object"
	}
	return fmt.Sprintf("%d objects", n)
}
