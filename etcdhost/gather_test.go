package etcdhost

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// concurrently's script prints every probe's output in the order given,
// whether the probes ran at once or, with no temp dir, one by one. That
// they ran at once is seen, not timed: each slow probe waits (up to 3 s)
// for the other to have started, and says whether it saw it.
func TestConcurrentlyKeepsOrderAndOverlaps(t *testing.T) {
	marks := t.TempDir()
	probe := func(self, other, section, line string) string {
		return fmt.Sprintf(`: > %[1]s/%[2]s.start; i=0; while [ ! -e %[1]s/%[3]s.start ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done
[ -e %[1]s/%[3]s.start ] && : > %[1]s/%[2]s.saw-%[3]s; echo @@%[4]s; echo %[5]s`, marks, self, other, section, line)
	}
	script := concurrently(
		probe("a", "c", "a", "one"),
		"echo @@b; echo two; exit 3",
		probe("c", "a", "c", "three"),
	)
	run := func(env ...string) string {
		for _, m := range []string{"a.start", "c.start", "a.saw-c", "c.saw-a"} {
			os.Remove(filepath.Join(marks, m))
		}
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return string(out)
	}
	saw := func(m string) bool { _, err := os.Stat(filepath.Join(marks, m)); return err == nil }
	want := "@@a\none\n@@b\ntwo\n@@c\nthree\n"
	out := run()
	if out != want {
		t.Errorf("at once: got %q, want %q", out, want)
	}
	if !saw("a.saw-c") || !saw("c.saw-a") {
		t.Errorf("the two slow probes did not run at once (a saw c: %v, c saw a: %v)", saw("a.saw-c"), saw("c.saw-a"))
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
	out = run("PATH=" + dir)
	if out != want {
		t.Errorf("one by one: got %q, want %q", out, want)
	}
	if saw("a.saw-c") {
		t.Errorf("one by one, yet the first probe saw the last start")
	}
	if s := Sections(out); strings.TrimSpace(s["b"]) != "two" {
		t.Errorf("sections: %v", s)
	}
}
