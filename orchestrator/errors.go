package orchestrator

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ezrestore/ezrestore/transport"
)

// Problems is several failures reported together, one sentence each.
type Problems []error

func (p Problems) Error() string {
	if len(p) == 1 {
		return p[0].Error()
	}
	lines := make([]string, len(p))
	for i, e := range p {
		lines[i] = "  - " + strings.ReplaceAll(e.Error(), "\n", "\n    ")
	}
	return fmt.Sprintf("%d problems:\n%s", len(p), strings.Join(lines, "\n"))
}

func (p Problems) Unwrap() []error { return p }

// StepError says which step failed on which hosts.
type StepError struct {
	Step     string
	Index    int
	Failures []*transport.HostError
}

func (e *StepError) Error() string {
	if len(e.Failures) == 1 {
		f := e.Failures[0]
		if f.Host == "" {
			return fmt.Sprintf("step %q failed: %v", e.Step, f.Err)
		}
		return fmt.Sprintf("step %q failed on host %s: %v", e.Step, f.Host, f.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "step %q failed on %d hosts:", e.Step, len(e.Failures))
	for _, f := range e.Failures {
		b.WriteString("\n  - " + strings.ReplaceAll(f.Error(), "\n", "\n    "))
	}
	return b.String()
}

func (e *StepError) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f
	}
	return out
}

// Hosts lists the hosts the step failed on.
func (e *StepError) Hosts() []string {
	var hs []string
	for _, f := range e.Failures {
		hs = append(hs, f.Host)
	}
	return hs
}

// ErrInterrupted is returned when the operator stopped the run between steps.
var ErrInterrupted = errors.New("interrupted")

// InterruptedError says where an interrupted run stopped.
type InterruptedError struct{ NextStep string }

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted before step %q; nothing of that step ran", e.NextStep)
}

func (e *InterruptedError) Unwrap() error { return ErrInterrupted }
