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
