package orchestrator

import (
	"fmt"
	"io"
	"strings"
)

// summaryHosts is how many host names a summary line lists before it
// counts the rest: a step on a hundred workers stays one line.
const summaryHosts = 4

// WriteSummary prints the plan's generic part in a size that does not grow
// with the number of hosts: unreachable hosts and skips grouped by reason,
// every warning, then one line per step (what, on which hosts, in which
// order) with the notes a person must read. Notes that belong to one host
// ("<host>: ..."; the commands a step will run there) and the commands
// themselves are left to WriteText, which `plan`, `restore --verbose` and
// the run record print.
func (p *Plan) WriteSummary(w io.Writer) {
	var order []string
	byReason := map[string][]string{}
	for _, sk := range p.Skipped {
		if _, ok := byReason[sk.Reason]; !ok {
			order = append(order, sk.Reason)
		}
		byReason[sk.Reason] = append(byReason[sk.Reason], sk.Host)
	}
	for _, r := range order {
		fmt.Fprintf(w, "Unreachable, left out: %s (%s)\n", someHosts(byReason[r]), r)
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	// A note that starts with a host's name is about that host alone
	// (often the commands a host-less task runs there).
	hosts := map[string]bool{}
	for _, st := range p.Steps {
		for _, t := range st.Tasks {
			if t.Host != "" {
				hosts[t.Host] = true
			}
		}
	}
	fmt.Fprintf(w, "Steps, in this order:\n")
	started := p.FromStep == ""
	perHost := 0
	for _, st := range p.Steps {
		if st.Name == p.FromStep {
			started = true
		}
		fmt.Fprintf(w, "%3d. %s: %s\n", st.Index+1, st.Name, st.summaryLine(started))
		for _, n := range st.Notes {
			if h, _, ok := strings.Cut(n, ": "); ok && hosts[h] {
				perHost++
				continue
			}
			fmt.Fprintf(w, "       note: %s\n", n)
		}
		for _, line := range st.skipLines() {
			fmt.Fprintf(w, "       %s\n", line)
		}
	}
	if perHost > 0 {
		fmt.Fprintf(w, "(%d notes about single hosts and every command are in the whole plan)\n", perHost)
	}
}

// summaryLine is the step on one line: its action, hosts and how they run.
func (st *StepPlan) summaryLine(started bool) string {
	var hosts []string
	checks := 0
	for _, t := range st.Tasks {
		checks += len(t.Checks)
		if t.Host != "" && t.Skip == "" {
			hosts = append(hosts, t.Host)
		}
	}
	var b strings.Builder
	b.WriteString(st.Action)
	switch {
	case len(hosts) == 0 && len(st.Groups) > 0:
		// A task for the whole cluster that reaches the groups' hosts itself.
		fmt.Fprintf(&b, " on %s", strings.Join(st.Groups, ", "))
	case len(hosts) == 0:
		b.WriteString(", on the bastion")
	case len(st.Groups) > 0:
		fmt.Fprintf(&b, " on %s: %s", strings.Join(st.Groups, ", "), someHosts(hosts))
	default:
		fmt.Fprintf(&b, " on %s", someHosts(hosts))
	}
	switch {
	case len(hosts) < 2:
	case st.Parallel:
		b.WriteString(", at once")
	default:
		b.WriteString(", one after another")
	}
	switch {
	case !started:
		b.WriteString("; before --from-step, not run")
	case st.DoneAtPlan:
		fmt.Fprintf(&b, "; read-only, done while planning (%d checks passed)", checks)
	case st.ReadOnly:
		b.WriteString("; read-only")
	}
	if started && st.Background {
		fmt.Fprintf(&b, "; %s", st.BackgroundText())
	}
	return b.String()
}

// skipLines are the step's skipped tasks, one line per reason.
func (st *StepPlan) skipLines() []string {
	var order []string
	byReason := map[string][]string{}
	for _, t := range st.Tasks {
		if t.Skip == "" {
			continue
		}
		if _, ok := byReason[t.Skip]; !ok {
			order = append(order, t.Skip)
		}
		h := t.Host
		if h == "" {
			h = "(cluster)"
		}
		byReason[t.Skip] = append(byReason[t.Skip], h)
	}
	var out []string
	for _, r := range order {
		out = append(out, fmt.Sprintf("skipped on %s: %s", someHosts(byReason[r]), r))
	}
	return out
}

// someHosts names up to summaryHosts hosts and counts the rest.
func someHosts(hosts []string) string {
	if len(hosts) <= summaryHosts {
		return strings.Join(hosts, ", ")
	}
	return fmt.Sprintf("%d hosts (%s, ... and %d more)", len(hosts), strings.Join(hosts[:summaryHosts-1], ", "), len(hosts)-summaryHosts+1)
}
