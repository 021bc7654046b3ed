package steps

import (
	"context"
	"fmt"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// Systemd stops or starts units and checks that they really are in that
// state afterwards (a unit with Restart=always stays down only when stopped).
//
// Params: state (stopped|started), units (list), no_block (start without
// waiting for the unit to report ready; etcd members wait for each other),
// serial (one host after another instead of all at once).
type Systemd struct{}

// Units lists the units a step of this action touches (see UnitUser).
func (Systemd) Units(step *orchestrator.Step) ([]string, error) {
	units, err := step.Params.Strings("units")
	if err != nil {
		return nil, err
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("params.units is empty")
	}
	return units, nil
}

// Leaves is the state the step puts its units in (see UnitSetter).
func (Systemd) Leaves(step *orchestrator.Step) (string, error) {
	return step.Params.String("state", "")
}

func (s Systemd) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	state, err := step.Params.String("state", "")
	if err != nil {
		return nil, err
	}
	units, err := s.Units(step)
	if err != nil {
		return nil, err
	}
	noBlock, err := step.Params.Bool("no_block", false)
	if err != nil {
		return nil, err
	}
	serial, err := step.Params.Bool("serial", false)
	if err != nil {
		return nil, err
	}
	cmd, err := SystemdCommand(state, units, noBlock)
	if err != nil {
		return nil, err
	}
	sp := &orchestrator.StepPlan{Parallel: !serial}
	if serial {
		sp.Notes = append(sp.Notes, "one host after another")
	}
	for _, h := range hosts {
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{{
			Kind: orchestrator.OpRun, Cmd: cmd, Changes: true,
		}}})
	}
	return sp, nil
}

// SystemdCommand is the command line that puts units in state and verifies it.
func SystemdCommand(state string, units []string, noBlock bool) (string, error) {
	q := transport.QuoteAll(units...)
	switch state {
	case "stopped":
		// One is-active for all the units (it succeeds when any is still
		// active); the per-unit loop runs only to name the culprit. Each
		// systemctl is a process on the host: on a hundred small workers
		// the calls saved are seconds of CPU.
		return fmt.Sprintf("set -e\nsystemctl stop -- %[1]s\nif systemctl is-active --quiet -- %[1]s; then for u in %[1]s; do if systemctl is-active --quiet -- \"$u\"; then echo \"$u is still active after stop\" >&2; fi; done; exit 1; fi", q), nil
	case "started":
		if noBlock {
			return fmt.Sprintf("systemctl start --no-block -- %s", q), nil
		}
		// is-active prints one state per unit and exits non-zero unless all
		// are active: `|| true` keeps set -e from ending the script before
		// the message, and the loop names each unit that is not active.
		return fmt.Sprintf("set -e\nsystemctl start -- %[1]s\nst=$(systemctl is-active -- %[1]s || true)\nif [ -n \"$(printf '%%s\\n' \"$st\" | grep -vx active || true)\" ]; then for u in %[1]s; do s=$(systemctl is-active -- \"$u\" || true); if [ \"$s\" != active ]; then echo \"$u is $s after start; journalctl -u $u has the reason\" >&2; fi; done; exit 1; fi", q), nil
	}
	return "", fmt.Errorf("params.state must be stopped or started, not %q", state)
}
