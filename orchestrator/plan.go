package orchestrator

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Plan is the whole run as data: every step, every host, every command.
// `plan` prints it, `restore` executes it, and the run record keeps it.
type Plan struct {
	Cluster   string        `json:"cluster"`
	Inventory string        `json:"inventory"`
	Playbook  string        `json:"playbook"`
	RunID     string        `json:"run_id"`
	Steps     []*StepPlan   `json:"steps"`
	Warnings  []string      `json:"warnings,omitempty"`
	Skipped   []SkippedHost `json:"unreachable_hosts,omitempty"`
	Created   time.Time     `json:"created"`
	// FromStep is the first step that runs; earlier ones are shown, not run.
	FromStep string `json:"from_step,omitempty"`
}

// SkippedHost is a host that could not be reached and is left out.
type SkippedHost struct {
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// StepPlan is one playbook step expanded over its hosts.
type StepPlan struct {
	Index  int      `json:"index"`
	Name   string   `json:"name"`
	Action string   `json:"action"`
	Groups []string `json:"groups,omitempty"`
	// ReadOnly steps change nothing anywhere (preflight, health checks).
	ReadOnly bool `json:"read_only"`
	// DoneAtPlan is true when the step already ran while planning (preflight).
	DoneAtPlan bool `json:"done_at_plan,omitempty"`
	// Parallel tasks run at once (bounded by forks); otherwise one host after another.
	Parallel bool `json:"parallel"`
	// Background steps run beside the steps after them, until FinishBefore
	// (empty: the end of the run); see Step.
	Background   bool     `json:"background,omitempty"`
	FinishBefore string   `json:"finish_before,omitempty"`
	Notes        []string `json:"notes,omitempty"`
	Tasks        []*Task  `json:"tasks"`
}

// BackgroundText says how a background step runs, for plans and progress.
func (st *StepPlan) BackgroundText() string {
	if st.FinishBefore == "" {
		return "in the background: the steps after it go on, the run ends when it has finished"
	}
	return fmt.Sprintf("in the background: the steps after it go on, %q waits for it", st.FinishBefore)
}

// Task is a step's work on one host (Host == "" for work not bound to a host).
type Task struct {
	Host string `json:"host,omitempty"`
	// Skip, when set, is why the task does not run.
	Skip string `json:"skip,omitempty"`
	Ops  []*Op  `json:"ops,omitempty"`
	// Checks are what a read-only step found at plan time, one line each.
	Checks []string `json:"checks,omitempty"`
}

// Op is one concrete action: a command the runner runs itself (Kind OpRun:
// Cmd on the task's host), or an op of the step's action's own kind (a
// transfer, a wait, a question), which its Executor runs with what it
// planned in Payload.
type Op struct {
	Kind string `json:"kind"`
	// Desc is a short human title; Cmd the exact remote command line.
	Desc string `json:"desc,omitempty"`
	Cmd  string `json:"cmd,omitempty"`
	// Changes is true for ops that change the host.
	Changes bool `json:"changes"`
	// Payload is what an op of an action's own kind needs to run: a struct
	// the action defines for its kind (a push's file and digest, a stop's
	// units and members). The plan and the run record hold it as JSON
	// beside the kind; PayloadOf reads it back typed.
	Payload any `json:"payload,omitempty"`
}

// UnmarshalJSON keeps the payload as raw JSON: only the action that owns
// the op's kind knows its type, and PayloadOf decodes it into that.
func (op *Op) UnmarshalJSON(b []byte) error {
	type plain Op
	var v struct {
		plain
		Payload json.RawMessage `json:"payload,omitempty"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*op = Op(v.plain)
	op.Payload = nil
	if len(v.Payload) > 0 {
		op.Payload = v.Payload
	}
	return nil
}

// PayloadOf returns op's payload as the action's type P: the value it
// planned, or the same decoded from a plan read back from JSON.
func PayloadOf[P any](op *Op) (P, error) {
	var p P
	switch v := op.Payload.(type) {
	case P:
		return v, nil
	case *P:
		if v != nil {
			return *v, nil
		}
	case json.RawMessage:
		if err := json.Unmarshal(v, &p); err != nil {
			return p, fmt.Errorf("op %s: reading its payload: %w", op.Kind, err)
		}
		return p, nil
	}
	return p, fmt.Errorf("op %s: payload is %T, want %T", op.Kind, op.Payload, p)
}

// OpResult is what running an op produced.
type OpResult struct {
	Stdout   string        `json:"stdout,omitempty"`
	Stderr   string        `json:"stderr,omitempty"`
	ExitCode int           `json:"exit_code"`
	Duration time.Duration `json:"duration_ns"`
	// Message is a one-line summary for the operator.
	Message string `json:"message,omitempty"`
}

// OpRun is the op kind the runner runs itself: a command on the host.
const OpRun = "run"

// WriteText prints the plan's generic part for a person: unreachable hosts,
// warnings, and what runs where, in order. The caller prints its own header
// (the restore's snapshot and members) before it.
func (p *Plan) WriteText(w io.Writer) {
	for _, sk := range p.Skipped {
		fmt.Fprintf(w, "Unreachable, left out: %s (%s)\n", sk.Host, sk.Reason)
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	started := p.FromStep == ""
	for _, st := range p.Steps {
		if st.Name == p.FromStep {
			started = true
		}
		fmt.Fprintf(w, "\n[%d/%d] %s  (%s", st.Index+1, len(p.Steps), st.Name, st.Action)
		if len(st.Groups) > 0 {
			fmt.Fprintf(w, " on %s", strings.Join(st.Groups, ", "))
		}
		switch {
		case !started:
			fmt.Fprint(w, "; before --from-step, not run")
		case st.DoneAtPlan:
			fmt.Fprint(w, "; read-only, done while planning")
		case st.ReadOnly:
			fmt.Fprint(w, "; read-only")
		}
		if started && st.Background {
			fmt.Fprintf(w, "; %s", st.BackgroundText())
		}
		fmt.Fprintln(w, ")")
		for _, n := range st.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		for _, t := range st.Tasks {
			host := t.Host
			if host == "" {
				host = "(cluster)"
			}
			if t.Skip != "" {
				fmt.Fprintf(w, "  %s: skipped: %s\n", host, t.Skip)
				continue
			}
			for _, c := range t.Checks {
				fmt.Fprintf(w, "  %s: ok: %s\n", host, c)
			}
			for _, op := range t.Ops {
				fmt.Fprintf(w, "  %s: %s\n", host, op.Line())
			}
		}
	}
}

// Line renders an op as one readable line.
func (op *Op) Line() string {
	switch op.Kind {
	case OpRun:
		if op.Desc != "" {
			return fmt.Sprintf("# %s\n      $ %s", op.Desc, indentCont(op.Cmd))
		}
		return "$ " + indentCont(op.Cmd)
	default:
		// An action's own op may run a command of its own making (prune-remove).
		if op.Cmd != "" {
			return fmt.Sprintf("%s: %s\n      $ %s", op.Kind, op.Desc, indentCont(op.Cmd))
		}
		return fmt.Sprintf("%s: %s", op.Kind, op.Desc)
	}
}

func indentCont(cmd string) string { return strings.ReplaceAll(cmd, "\n", "\n        ") }
