package steps

import (
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/playbooks"
)

func TestStaticPodsParams(t *testing.T) {
	good := orchestrator.Params{"state": "stopped", "manifests": []any{"kube-apiserver", "etcd"}}
	p, err := readStaticPodsParams(&orchestrator.Step{Params: good})
	if err != nil || p.dir != "/etc/kubernetes/manifests" || p.timeout != 180 || len(p.manifests) != 2 {
		t.Fatalf("%+v %v", p, err)
	}
	for name, params := range map[string]orchestrator.Params{
		"state":        {"state": "restarted", "manifests": "etcd"},
		"no manifests": {"state": "started"},
		"a path":       {"state": "started", "manifests": "../etcd"},
		"a shell word": {"state": "started", "manifests": "etcd;rm"},
		"relative dir": {"state": "started", "manifests": "etcd", "manifest_dir": "manifests"},
		"timeout":      {"state": "stopped", "manifests": "etcd", "timeout": "soon"},
	} {
		if _, err := readStaticPodsParams(&orchestrator.Step{Params: params}); err == nil {
			t.Errorf("%s: accepted %v", name, params)
		}
	}
}

// The stop moves each manifest aside before it waits, and refuses to
// overwrite a different copy already aside; the start copies back and
// keeps the copy.
func TestStaticPodsScripts(t *testing.T) {
	p := &staticPodsParams{state: "stopped", manifests: []string{"etcd"}, dir: "/etc/kubernetes/manifests", timeout: 60}
	stop := stopStaticPodsScript(p, "/etc/kubernetes/ezrestore-T")
	for _, want := range []string{`mv -f -- "$d"/etcd.yaml "$a"/etcd.yaml`, "both exist and differ", `-ge 60`, `io.kubernetes.pod.namespace`} {
		if !strings.Contains(stop, want) {
			t.Errorf("stop script lacks %q:\n%s", want, stop)
		}
	}
	if strings.Index(stop, "mv -f") > strings.Index(stop, "while :") {
		t.Error("the stop waits before it moves the manifest")
	}
	start := startStaticPodsScript(p, "/etc/kubernetes/ezrestore-T")
	if !strings.Contains(start, `cp -p -- "$a"/etcd.yaml "$d"/.etcd.ezrestore-tmp`) || strings.Contains(start, "rm ") {
		t.Errorf("start script:\n%s", start)
	}
}

// The built-in static-pod playbooks name only actions their registries have.
func TestKubeadmPlaybooksParse(t *testing.T) {
	if _, err := orchestrator.ParsePlaybook(playbooks.RestoreKubeadm, playbooks.RestoreKubeadmName, Actions(&Restore{})); err != nil {
		t.Error(err)
	}
	if _, err := orchestrator.ParsePlaybook(playbooks.RollbackKubeadm, playbooks.RollbackKubeadmName, RollbackActions(&Rollback{})); err != nil {
		t.Error(err)
	}
}
