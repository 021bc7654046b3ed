package steps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The swap script runs in a real sh on real dirs, with a hostile dir name.
func TestSwapScriptKeepsOldDataAndIsIdempotent(t *testing.T) {
	base := filepath.Join(t.TempDir(), `d a"t$(touch pwned)'a`)
	restored, live, aside := base+"/etcdhost.Stage/member", base+"/member", base+"/member.before-T"
	for _, d := range []string{restored, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(restored+"/new", nil, 0o600)
	os.WriteFile(live+"/old", nil, 0o600)
	run := func() (string, error) {
		cmd := exec.Command("sh", "-c", swapScript(restored, live, aside, `"restore snapshot"`))
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if _, e := os.Stat(filepath.Join(cmd.Dir, "pwned")); e == nil {
			t.Fatal("a path ran as a command")
		}
		return string(out), err
	}
	out, err := run()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := os.Stat(live + "/new"); err != nil {
		t.Fatalf("restored data not in place: %s", out)
	}
	if _, err := os.Stat(aside + "/old"); err != nil {
		t.Fatalf("old data not kept aside: %s", out)
	}
	out, err = run()
	if err != nil || !strings.Contains(out, "already swapped") {
		t.Fatalf("second run: %v %s", err, out)
	}
	// A restored dir waiting while both live and aside exist: refuse, touch nothing.
	os.MkdirAll(restored, 0o700)
	out, err = run()
	if err == nil || !strings.Contains(out, "refusing to guess") {
		t.Fatalf("want refusal, got %v %s", err, out)
	}
}
