package orchestrator

import (
	"encoding/json"
	"strings"
	"testing"
)

type filePayload struct {
	Local string `json:"local"`
	Mode  uint32 `json:"mode"`
}

// An op's payload is the action's own type when planned, is written as JSON
// under the op in the plan, and reads back as the same type from that JSON.
func TestPayloadRoundTripsThroughThePlan(t *testing.T) {
	plan := &Plan{Steps: []*StepPlan{{Name: "push", Tasks: []*Task{{Host: "e1", Ops: []*Op{
		{Kind: OpRun, Cmd: "mkdir -p /x", Changes: true},
		{Kind: "push", Desc: "a file", Changes: true, Payload: filePayload{Local: "/b/s.db", Mode: 0o600}},
	}}}}}}
	op := plan.Steps[0].Tasks[0].Ops[1]
	if p, err := PayloadOf[filePayload](op); err != nil || p.Local != "/b/s.db" {
		t.Fatalf("as planned: %+v %v", p, err)
	}
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"kind":"push","desc":"a file","changes":true,"payload":{"local":"/b/s.db","mode":384}`) {
		t.Fatalf("plan JSON: %s", b)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	ops := back.Steps[0].Tasks[0].Ops
	if ops[0].Payload != nil || ops[0].Cmd != "mkdir -p /x" || !ops[0].Changes {
		t.Fatalf("a run op read back: %+v", ops[0])
	}
	p, err := PayloadOf[filePayload](ops[1])
	if err != nil || p != (filePayload{Local: "/b/s.db", Mode: 0o600}) || ops[1].Desc != "a file" {
		t.Fatalf("read back: %+v %v", p, err)
	}
	// The wrong type, or none, is an error naming the op's kind.
	if _, err := PayloadOf[string](op); err == nil || !strings.Contains(err.Error(), "op push") {
		t.Fatalf("wrong type: %v", err)
	}
	if _, err := PayloadOf[filePayload](ops[0]); err == nil {
		t.Fatal("a run op has no payload")
	}
}
