// Package playbooks embeds the playbooks ezrestore ships (restore.yml).
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
