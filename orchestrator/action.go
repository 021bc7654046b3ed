package orchestrator

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// Action is what a playbook step does. Its Plan turns the step into concrete
// tasks per host. Plan may run read-only commands (preflight gathers facts that
// way) and nothing else: `ezrestore plan` calls it and must change nothing.
type Action interface {
	Plan(ctx context.Context, env *Env, step *Step, hosts []*inventory.Host) (*StepPlan, error)
}

// Executor is implemented by actions whose plans hold ops of a kind other than
// the runner's own "run" (a push, a wait, a question to the operator).
// conn is nil for ops not bound to a host (Task.Host == "").
type Executor interface {
	Exec(ctx context.Context, env *Env, task *Task, op *Op, conn transport.Conn) (OpResult, error)
}

// Registry names the actions a playbook may use. It is built in one place
// (steps.Actions for the restore) and passed to ParsePlaybook and the Env.
type Registry map[string]Action

// Names lists the registered action names, sorted.
func (r Registry) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Conns gives the connection of a host by inventory name. *transport.Pool is one.
type Conns interface {
	Get(host string) (transport.Conn, bool)
}

// Env is what a run knows that is not specific to any action: the inventory,
// the playbook and its actions, the connections and where to report.
// Actions keep their own state in their own types.
type Env struct {
	// Cluster names the cluster (kubeasz name, or the inventory path).
	Cluster   string
	Inventory *inventory.Inventory
	Playbook  *Playbook
	Actions   Registry
	Conns     Conns
	// Unreachable holds the hosts that could not be connected to, with why.
	Unreachable map[string]error
	RunID       string
	// Forks bounds how many hosts work at once.
	Forks int
	// Out receives the human progress lines.
	Out io.Writer
	// Record, when set, receives events and outputs of the run.
	Record *Record
	// Progress, when set, gives each upload a callback for the bytes sent to a host.
	Progress func(host string) func(written int64)
	// PlanGate, when set, is asked before each step is planned; an error
	// stops the planning. A caller still preparing something that later
	// steps need (a file being checked) lets the steps that do not need it
	// plan meanwhile.
	PlanGate func(step *Step, action Action) error

	// step is the step being run, set in the Env its actions get.
	step *StepPlan
}

// Conn returns the connection to host or says why there is none. The error
// does not name the host: callers name it once.
func (e *Env) Conn(host string) (transport.Conn, error) {
	if err, bad := e.Unreachable[host]; bad {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	if e.Conns == nil {
		return nil, fmt.Errorf("no connection")
	}
	c, ok := e.Conns.Get(host)
	if !ok {
		return nil, fmt.Errorf("no connection")
	}
	return c, nil
}

// Printf writes a progress line.
func (e *Env) Printf(format string, args ...any) {
	if e.Out != nil {
		fmt.Fprintf(e.Out, format, args...)
	}
}

// StepOf returns the index of the first playbook step whose action is of
// type A, or -1, so steps and callers refer to each other by type, never by a
// step or action name a user may change.
func StepOf[A Action](env *Env) int {
	for i, st := range env.Playbook.Steps {
		if _, ok := env.Actions[st.Action].(A); ok {
			return i
		}
	}
	return -1
}
