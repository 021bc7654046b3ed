// Package restore is `ezrestore restore`, `plan` and `status`: it opens the
// cluster (package cluster), checks the snapshot on the bastion, connects to
// every host, plans with the restore's actions (package steps) on the generic
// engine (package orchestrator), runs the plan with a run record, and turns a
// failure into what happened and what to do next.
//
// Files: prepare.go (everything up to the plan; changes nothing),
// plan.go (the restore's plan and how it reads), execute.go (running it and
// explaining failures), status.go (the health check on its own).
package restore
