package orchestrator

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"text/tabwriter"
	"time"
)

// Recap counts what happened per host and per step.
type Recap struct {
	mu    sync.Mutex // tasks of a step note their outcomes at once
	Hosts map[string]*HostRecap
	Steps []StepRecap
}

// HostRecap is one host's line in the recap.
type HostRecap struct {
	OK, Changed, Skipped, Failed int
	Duration                     time.Duration
}

// Step outcomes in a StepRecap.
const (
	StepOK     = "ok"
	StepFailed = "failed"
	// StepBefore is a step before --from-step: it ran in the run resumed.
	StepBefore = "not run (before --from-step)"
)

// StepRecap is one step's line in the recap.
type StepRecap struct {
	Name     string
	Status   string
	Duration time.Duration
}

// note adds a task's outcome to its host's line.
func (r *Recap) note(host string, f func(*HostRecap), d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if host == "" {
		host = "(cluster)"
	}
	hr := r.Hosts[host]
	if hr == nil {
		hr = &HostRecap{}
		r.Hosts[host] = hr
	}
	f(hr)
	hr.Duration += d
}

// WriteRecap prints the per-host and per-step recap, Ansible style.
func (r *Recap) WriteRecap(w io.Writer) {
	fmt.Fprintln(w, "\nRECAP")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hosts := make([]string, 0, len(r.Hosts))
	for h := range r.Hosts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		c := r.Hosts[h]
		fmt.Fprintf(tw, "  %s\tok=%d\tchanged=%d\tskipped=%d\tfailed=%d\t%.2fs\n", h, c.OK, c.Changed, c.Skipped, c.Failed, c.Duration.Seconds())
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%.2fs\n", s.Name, s.Status, s.Duration.Seconds())
	}
	tw.Flush()
}

// sortSteps puts the steps in playbook order (a background step is noted when
// the run waits for it, after steps that started later).
func (r *Recap) sortSteps(plan *Plan) {
	at := map[string]int{}
	for _, sp := range plan.Steps {
		at[sp.Name] = sp.Index
	}
	sort.SliceStable(r.Steps, func(i, j int) bool { return at[r.Steps[i].Name] < at[r.Steps[j].Name] })
}
