package orchestrator

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
)

// Action is what a playbook step does. Its Plan turns the step into concrete
// tasks per host. Plan may run read-only commands (preflight gathers facts that
// way) and nothing else: `ezrestore plan` calls it and must change nothing.
type Action interface {
	Plan(ctx context.Context, env *Env, step *Step, hosts []*inventory.Host) (*StepPlan, error)
}

// Executor runs one op of a kind other than the built-in "run" and "upload".
// conn is nil for ops that are not bound to a host (Task.Host == "").
type Executor func(ctx context.Context, env *Env, task *Task, op *Op, conn Conn) (OpResult, error)

var (
	regMu     sync.RWMutex
	actions   = map[string]Action{}
	executors = map[string]Executor{}
)

// RegisterAction makes an action available to playbooks under name.
func RegisterAction(name string, a Action) {
	regMu.Lock()
	defer regMu.Unlock()
	actions[name] = a
}

// RegisterExecutor runs ops of kind with e.
func RegisterExecutor(kind string, e Executor) {
	regMu.Lock()
	defer regMu.Unlock()
	executors[kind] = e
}

// LookupAction returns the action registered under name.
func LookupAction(name string) (Action, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	a, ok := actions[name]
	return a, ok
}

func lookupExecutor(kind string) (Executor, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	e, ok := executors[kind]
	return e, ok
}

// ActionNames lists the registered actions, sorted.
func ActionNames() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(actions))
	for n := range actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Conns gives the connection of a host by inventory name. *Pool is one.
type Conns interface {
	Get(host string) (Conn, bool)
}

// SnapshotRef is the one snapshot a restore pushes everywhere, as checked on the bastion.
type SnapshotRef struct {
	Path string `json:"path"`
	// How says how --snapshot was resolved ("as given", "latest backup ...").
	How     string    `json:"how"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"time"`
	SHA256  string    `json:"sha256"`
	// HasTrailer is false for a db copied from member/snap/db: restored with --skip-hash-check.
	HasTrailer bool  `json:"has_hash_trailer"`
	Revision   int64 `json:"revision"`
}

// Options are the run's settings from the command line.
type Options struct {
	// Yes skips the typed confirmation.
	Yes bool
	// Confirm asks the operator to type yes; nil means there is no terminal.
	Confirm func(summary string) (bool, error)
	// BumpRevision adds --bump-revision/--mark-compacted where the tool has them.
	BumpRevision bool
	// HealthTimeout bounds the wait for a healthy cluster.
	HealthTimeout time.Duration
	// Forks bounds how many hosts work at once.
	Forks int
}

// Env is everything a run knows: the inventory, connections, the snapshot and
// facts gathered by preflight. Steps read it; the runner owns it.
type Env struct {
	// Cluster names the cluster (kubeasz name, or the inventory path).
	Cluster   string
	Inventory *inventory.Inventory
	Members   []inventory.EtcdMember
	Playbook  *Playbook
	Conns     Conns
	// Unreachable holds the hosts that could not be connected to, with why.
	Unreachable map[string]error
	Snapshot    SnapshotRef
	Token       string
	RunID       string
	Opts        Options
	// Out receives the human progress lines.
	Out io.Writer
	// Record, when set, receives events and outputs of the run.
	Record *Record

	mu    sync.Mutex
	facts map[string]any
}

// SetFact stores something a step learned about a host for later steps.
func (e *Env) SetFact(host, key string, v any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.facts == nil {
		e.facts = map[string]any{}
	}
	e.facts[host+"\x00"+key] = v
}

// Fact returns what SetFact stored.
func (e *Env) Fact(host, key string) (any, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.facts[host+"\x00"+key]
	return v, ok
}

// Conn returns the connection to host or says why there is none.
func (e *Env) Conn(host string) (Conn, error) {
	if err, bad := e.Unreachable[host]; bad {
		return nil, fmt.Errorf("host %s is unreachable: %v", host, err)
	}
	if e.Conns == nil {
		return nil, fmt.Errorf("host %s: no connection", host)
	}
	c, ok := e.Conns.Get(host)
	if !ok {
		return nil, fmt.Errorf("host %s: no connection", host)
	}
	return c, nil
}

// Member returns the etcd member of an inventory host.
func (e *Env) Member(host string) (inventory.EtcdMember, bool) {
	for _, m := range e.Members {
		if m.Host.Name == host {
			return m, true
		}
	}
	return inventory.EtcdMember{}, false
}

// Printf writes a progress line.
func (e *Env) Printf(format string, args ...any) {
	if e.Out != nil {
		fmt.Fprintf(e.Out, format, args...)
	}
}
