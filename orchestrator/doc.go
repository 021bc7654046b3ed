// Package orchestrator is ezrestore's generic engine: a playbook of named
// steps, each running an action on the hosts of some inventory groups, is
// expanded into a plan (every step, every host, every exact command), which
// `plan` prints, `restore`, `rollback` and `prune` run step by step, and the
// run record keeps.
//
// It knows nothing of etcd or restores: the actions come from the caller as a
// Registry (package steps builds one per command), and so does any state they
// share. It reaches hosts only through package transport and works on many
// at once only through package fanout.
//
// The contract with an action (action.go, plan.go):
//   - Plan turns a step into tasks, one per host (or one for the cluster),
//     each a list of ops; it may read but never change anything.
//   - An op is either a command the runner runs itself (kind "run": Cmd on
//     the task's host), or of the action's own kind (a transfer, a wait, a
//     question), which the action runs (Executor). What such an op needs
//     travels in its Payload, a struct of the action's: the plan and the run
//     record hold it as JSON beside the kind, and PayloadOf reads it back
//     typed.
//   - An op that works on several hosts in phases decided at run time runs
//     their commands through Env.RunOnHosts, which records each as a task's
//     (its output, an event per host): no action writes the record itself.
//   - State the steps of a run share is the caller's typed value, bound into
//     the actions when the Registry is built.
//
// Where to look: playbook.go (the YAML a user writes), action.go (what an
// action must provide), build.go (playbook -> plan), plan.go (the plan as
// data and text), run.go (running a plan), record.go (the run record).
package orchestrator
