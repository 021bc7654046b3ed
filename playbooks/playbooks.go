// Package playbooks embeds the playbooks ezrestore ships (restore.yml, rollback.yml, prune.yml).
// It holds data, and reads no more of it than the step names shell
// completion offers (StepNames); the engine parses the playbooks. It imports
// no other ezrestore package.
package playbooks

import (
	_ "embed"

	"gopkg.in/yaml.v3"
)

// Restore is the default restore playbook, playbooks/restore.yml.
//
//go:embed restore.yml
var Restore []byte

// RestoreName is the name errors about the embedded playbook use.
const RestoreName = "playbooks/restore.yml (built in)"

// RestoreKubeadm is the restore of static-pod etcd and control plane
// (kubeadm), playbooks/restore-kubeadm.yml.
//
//go:embed restore-kubeadm.yml
var RestoreKubeadm []byte

// RestoreKubeadmName is the name errors about the embedded kubeadm playbook use.
const RestoreKubeadmName = "playbooks/restore-kubeadm.yml (built in)"

// RollbackKubeadm is the rollback of static-pod etcd (kubeadm),
// playbooks/rollback-kubeadm.yml.
//
//go:embed rollback-kubeadm.yml
var RollbackKubeadm []byte

// RollbackKubeadmName is the name errors about the embedded kubeadm rollback use.
const RollbackKubeadmName = "playbooks/rollback-kubeadm.yml (built in)"

// Rollback puts back what a restore set aside, playbooks/rollback.yml.
//
//go:embed rollback.yml
var Rollback []byte

// RollbackName is the name errors about the embedded rollback playbook use.
const RollbackName = "playbooks/rollback.yml (built in)"

// Prune removes what earlier restores left on the etcd hosts, playbooks/prune.yml.
//
//go:embed prune.yml
var Prune []byte

// PruneName is the name errors about the embedded prune playbook use.
const PruneName = "playbooks/prune.yml (built in)"

// StepNames lists the step names of a playbook, in order, without checking
// its actions (for shell completion of --from-step).
func StepNames(data []byte) ([]string, error) {
	var pb struct {
		Steps []struct {
			Name string `yaml:"name"`
		} `yaml:"steps"`
	}
	if err := yaml.Unmarshal(data, &pb); err != nil {
		return nil, err
	}
	names := make([]string, len(pb.Steps))
	for i, s := range pb.Steps {
		names[i] = s.Name
	}
	return names, nil
}
