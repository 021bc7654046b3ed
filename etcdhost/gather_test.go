package etcdhost

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// concurrently's script prints every probe's output in the order given,
// whether the probes ran at once or, with no temp dir, one by one; probes
// that each take a while take about as long as one.
func TestConcurrentlyKeepsOrderAndOverlaps(t *testing.T) {
	script := concurrently(
		"sleep 0.3; echo @@a; echo one",
		"echo @@b; echo two; exit 3",
		"sleep 0.3; echo @@c; echo three",
	)
	run := func(env ...string) (string, time.Duration) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), env...)
		t0 := time.Now()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return string(out), time.Since(t0)
	}
	want := "@@a\none\n@@b\ntwo\n@@c\nthree\n"
	out, took := run()
	if out != want {
		t.Errorf("at once: got %q, want %q", out, want)
	}
	if took > 550*time.Millisecond {
		t.Errorf("two 0.3 s probes took %v together: they did not run at once", took)
	}
	// No mktemp on PATH: the fallback runs them one by one, same output.
	dir := t.TempDir()
	for _, tool := range []string{"sleep", "rm", "cat"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skip(tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	out, _ = run("PATH=" + dir)
	if out != want {
		t.Errorf("one by one: got %q, want %q", out, want)
	}
	if s := Sections(out); strings.TrimSpace(s["b"]) != "two" {
		t.Errorf("sections: %v", s)
	}
}
