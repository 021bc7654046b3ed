// Package playbooks embeds the playbooks ezrestore ships (restore.yml, rollback.yml).
// It holds data only: it parses nothing and imports no other package; the
// engine parses what it embeds.
package playbooks

import _ "embed"

// Restore is the default restore playbook, playbooks/restore.yml.
//
//go:embed restore.yml
var Restore []byte

// RestoreName is the name errors about the embedded playbook use.
const RestoreName = "playbooks/restore.yml (built in)"

// Rollback puts back what a restore set aside, playbooks/rollback.yml.
//
//go:embed rollback.yml
var Rollback []byte

// RollbackName is the name errors about the embedded rollback playbook use.
const RollbackName = "playbooks/rollback.yml (built in)"
