package steps

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/ezrestore/ezrestore/orchestrator"
)

// An action's op runs as well from its plan read back from JSON (the run
// record's plan.json) as from the plan in memory: the payload carries all
// it needs.
func TestEtcdStopRunsFromItsPlanReadBack(t *testing.T) {
	e, env, m, hosts := stopFixture("10.0.0.2")
	sp, err := e.Plan(context.Background(), env, &orchestrator.Step{Name: "stop etcd", Action: "etcd-stop"}, hosts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	var back orchestrator.StepPlan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Exec(context.Background(), env, back.Tasks[0], back.Tasks[0].Ops[0], nil); err != nil {
		t.Fatal(err)
	}
	if len(m.signalled) != 2 || slices.Contains(m.signalled, "10.0.0.2") || len(m.stopped) != 3 {
		t.Fatalf("signalled %v, stopped %v: want the two followers signalled first, then all three stopped", m.signalled, m.stopped)
	}
}
