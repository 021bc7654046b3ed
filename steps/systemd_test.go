package steps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A unit that is not active after start gets the step's own message, not a
// bare "exit status 3" from systemctl is-active under set -e.
func TestSystemdStartSaysWhichUnitIsNotActive(t *testing.T) {
	dir := t.TempDir()
	// A stand-in systemctl: start succeeds, is-active says failed with exit 3 as systemd does.
	fake := "#!/bin/sh\ncase \"$1\" in is-active) echo failed; exit 3;; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(fake), 0o700); err != nil {
		t.Fatal(err)
	}
	cmdline, err := SystemdCommand("started", []string{"kube-apiserver"}, false)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; output %s", err, out)
	}
	if !strings.Contains(string(out), "kube-apiserver is failed after start; journalctl -u kube-apiserver has the reason") {
		t.Errorf("output %q lacks the step's message", out)
	}
}

// TestSystemdCommandsJudgeEveryUnit runs the stop and start scripts against a
// stand-in systemctl that answers per unit as systemd does (is-active prints
// a state per unit and exits 0 when any is active): a unit left in the
// wrong state is named, and only that one.
func TestSystemdCommandsJudgeEveryUnit(t *testing.T) {
	dir := t.TempDir()
	fake := `#!/bin/sh
cmd=$1; shift
[ "$cmd" = is-active ] || exit 0
quiet=; [ "$1" = --quiet ] && { quiet=1; shift; }
[ "$1" = -- ] && shift
rc=3
for u in "$@"; do
	s=$(printf '%s\n' $STATES | sed -n "s/^$u=//p"); s=${s:-inactive}
	[ -n "$quiet" ] || echo "$s"
	[ "$s" = active ] && rc=0
done
exit $rc
`
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(fake), 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(state, states string) (string, int) {
		cmdline, err := SystemdCommand(state, []string{"kubelet", "kube-proxy"}, false)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", cmdline)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "STATES="+states)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	for _, c := range []struct {
		state, states, want, not string
		code                     int
	}{
		{"stopped", "kubelet=inactive kube-proxy=inactive", "", "", 0},
		{"stopped", "kubelet=inactive kube-proxy=active", "kube-proxy is still active after stop", "kubelet is", 1},
		{"started", "kubelet=active kube-proxy=active", "", "", 0},
		{"started", "kubelet=failed kube-proxy=active", "kubelet is failed after start; journalctl -u kubelet has the reason", "kube-proxy is", 1},
	} {
		out, code := run(c.state, c.states)
		if code != c.code || c.want != "" && !strings.Contains(out, c.want) || c.not != "" && strings.Contains(out, c.not) {
			t.Errorf("%s with %s: exit %d, output %q; want exit %d naming %q only", c.state, c.states, code, out, c.code, c.want)
		}
	}
}
