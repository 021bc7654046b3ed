// Package restore is every command that acts on a whole cluster's etcd
// through the restore's actions: `restore` and `plan`, `rollback` (putting a
// run's set-aside data back), `prune` (removing what earlier runs set aside),
// `status` (the health check on its own, with the space account) and the run
// lock's use around them. It opens the cluster (package cluster), checks the
// snapshot on the bastion, connects to every host, plans with the actions
// (package steps) on the generic engine (package orchestrator), runs the plan
// with a run record, and turns a failure into what happened and what to do
// next.
//
// Files: prepare.go (everything up to the plan; changes nothing), source.go
// (where --snapshot points), plan.go (the restore's plan and how it reads),
// execute.go (running it and explaining failures), rollback.go, prune.go
// (run records and what their runs left), status.go, lock.go.
package restore
