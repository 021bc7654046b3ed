// Package orchestrator is ezrestore's generic engine: a playbook of named
// steps, each running an action on the hosts of some inventory groups, is
// expanded into a plan (every step, every host, every exact command), which
// `plan` prints, `restore` runs step by step, and the run record keeps.
//
// It knows nothing of etcd or restores: the actions come from the caller as a
// Registry (package steps builds the restore's), and so does any state they
// share. It reaches hosts only through package transport and works on many
// at once only through package fanout.
//
// Where to look: playbook.go (the YAML a user writes), action.go (what an
// action must provide), build.go (playbook -> plan), plan.go (the plan as
// data and text), run.go (running a plan), record.go (the run record).
package orchestrator
