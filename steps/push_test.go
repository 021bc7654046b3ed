package steps

import (
	"testing"

	"github.com/ezrestore/ezrestore/orchestrator"
)

func TestPushMode(t *testing.T) {
	for _, c := range []struct {
		param any
		size  int64
		want  string
	}{
		{nil, 33 << 20, "gzip"},
		{nil, 100 << 10, "none"},
		{"auto", autoGzipMin, "gzip"},
		{"auto", autoGzipMin - 1, "none"},
		{"none", 2 << 30, "none"},
		{"gzip", 10, "gzip"},
	} {
		step := &orchestrator.Step{Params: orchestrator.Params{}}
		if c.param != nil {
			step.Params["compress"] = c.param
		}
		got, err := pushMode(step, c.size)
		if err != nil || got != c.want {
			t.Errorf("compress %v, %d bytes: %q, %v; want %q", c.param, c.size, got, err, c.want)
		}
	}
	for _, bad := range []any{"zstd", true} {
		if _, err := pushMode(&orchestrator.Step{Params: orchestrator.Params{"compress": bad}}, 1<<30); err == nil {
			t.Errorf("compress %v accepted", bad)
		}
	}
}
