package steps

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// StaticPods stops or starts static pods of the kubelet (kubeadm's etcd and
// control plane) the only way the kubelet allows: by taking their manifests
// out of its manifest dir and putting them back.
//
// Stopped: each manifest moves into the run's dir beside the manifest dir,
// <manifest dir>/../ezrestore-<token>/ (0700); the step then waits until
// the container runtime reports the pod's container gone (crictl, else
// containerd's ctr). Started: each manifest is copied back from there
// (through a dot-file the kubelet ignores, renamed into place), and the
// copy in the run's dir stays: it is the record of what was moved, never
// deleted. Both are idempotent, so a resumed run repeats them safely.
//
// Params: state (stopped|started), manifests (names without .yaml, e.g.
// [etcd] or [kube-apiserver, kube-controller-manager, kube-scheduler]),
// manifest_dir (default /etc/kubernetes/manifests), timeout (seconds the
// stop waits for the containers, default 180: the kubelet looks at its
// manifest dir every 20 s by default and then stops the pod gracefully).
type StaticPods struct {
	// token names the run's dir for the manifests (ManifestsAside).
	token func() string
}

var manifestNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// staticPodsParams are a step's params, read and checked.
type staticPodsParams struct {
	state     string
	manifests []string
	dir       string
	timeout   int
}

func readStaticPodsParams(step *orchestrator.Step) (*staticPodsParams, error) {
	p := &staticPodsParams{}
	var err error
	if p.state, err = step.Params.String("state", ""); err != nil {
		return nil, err
	}
	if p.state != "stopped" && p.state != "started" {
		return nil, fmt.Errorf("params.state must be stopped or started, not %q", p.state)
	}
	if p.manifests, err = step.Params.Strings("manifests"); err != nil {
		return nil, err
	}
	if len(p.manifests) == 0 {
		return nil, fmt.Errorf("params.manifests is empty")
	}
	for _, m := range p.manifests {
		if !manifestNameRE.MatchString(m) {
			return nil, fmt.Errorf("params.manifests: %q is not a manifest name (kube-apiserver, etcd, ...)", m)
		}
	}
	if p.dir, err = step.Params.String("manifest_dir", etcdhost.KubeletManifestDir); err != nil {
		return nil, err
	}
	if !path.IsAbs(p.dir) {
		return nil, fmt.Errorf("params.manifest_dir %q: an absolute path", p.dir)
	}
	p.dir = path.Clean(p.dir)
	p.timeout = 180
	if v, ok := step.Params["timeout"]; ok {
		n, isInt := v.(int)
		if !isInt || n < 1 {
			return nil, fmt.Errorf("param timeout: want a number of seconds, got %v", v)
		}
		p.timeout = n
	}
	return p, nil
}

func (s *StaticPods) Plan(ctx context.Context, env *orchestrator.Env, step *orchestrator.Step, hosts []*inventory.Host) (*orchestrator.StepPlan, error) {
	p, err := readStaticPodsParams(step)
	if err != nil {
		return nil, err
	}
	aside := etcdhost.ManifestsAside(p.dir, s.token())
	sp := &orchestrator.StepPlan{Parallel: true}
	var names []string
	for _, m := range p.manifests {
		names = append(names, m+".yaml")
	}
	if p.state == "stopped" {
		sp.Notes = append(sp.Notes, fmt.Sprintf("moves %s out of %s into %s (kept)", strings.Join(names, ", "), p.dir, aside))
	} else {
		sp.Notes = append(sp.Notes, fmt.Sprintf("copies %s back into %s from %s (the copies there stay)", strings.Join(names, ", "), p.dir, aside))
	}
	for _, h := range hosts {
		var cmd, desc string
		if p.state == "stopped" {
			cmd, desc = stopStaticPodsScript(p, aside), "move "+strings.Join(names, ", ")+" aside and wait for the containers to stop"
		} else {
			cmd, desc = startStaticPodsScript(p, aside), "put "+strings.Join(names, ", ")+" back"
		}
		sp.Tasks = append(sp.Tasks, &orchestrator.Task{Host: h.Name, Ops: []*orchestrator.Op{{
			Kind: orchestrator.OpRun, Desc: desc, Cmd: cmd, Changes: true,
		}}})
	}
	return sp, nil
}

// stopStaticPodsScript moves each manifest aside (a manifest already aside
// from an earlier try is fine; one in neither place is an error), then
// waits for every one of the pods' containers to be gone. Static pods of
// kubeadm are named after their manifest's container: kube-apiserver runs
// the container kube-apiserver.
func stopStaticPodsScript(p *staticPodsParams, aside string) string {
	q := transport.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\nd=%s a=%s\nmkdir -p -m 0700 -- \"$a\"\n", q(p.dir), q(aside))
	for _, m := range p.manifests {
		f := q(m + ".yaml")
		fmt.Fprintf(&b, `if [ -e "$d"/%[1]s ]; then
  if [ -e "$a"/%[1]s ] && ! cmp -s -- "$d"/%[1]s "$a"/%[1]s; then printf '%%s/%%s and %%s/%%s both exist and differ: refusing to guess which is the real one\n' "$d" %[1]s "$a" %[1]s >&2; exit 1; fi
  mv -f -- "$d"/%[1]s "$a"/%[1]s && printf 'note: moved %%s/%%s to %%s/ (kept)\n' "$d" %[1]s "$a"
elif [ -e "$a"/%[1]s ]; then printf '%%s is already in %%s\n' %[1]s "$a"
else printf 'no %%s in %%s (nor in %%s): this host has no such static pod\n' %[1]s "$d" "$a" >&2; exit 1
fi
`, f)
	}
	fmt.Fprintf(&b, "waited=0\nwhile :; do\n  left=\n")
	for _, m := range p.manifests {
		fmt.Fprintf(&b, "  st=$(\n%s\n)\n  case $st in active) left=\"$left %s\";; inactive) ;; *) echo \"$st\" >&2; exit 1;; esac\n",
			etcdhost.StaticPodRunningScript(m, "kube-system"), m)
	}
	fmt.Fprintf(&b, `  [ -z "$left" ] && break
  if [ "$waited" -ge %[1]d ]; then printf 'containers still running %%d s after their manifests moved:%%s (is the kubelet running? journalctl -u kubelet)\n' "$waited" "$left" >&2; exit 1; fi
  sleep 2; waited=$((waited + 2))
done
printf 'containers stopped after %%d s\n' "$waited"`, p.timeout)
	return b.String()
}

// startStaticPodsScript puts each manifest back unless one is there already.
func startStaticPodsScript(p *staticPodsParams, aside string) string {
	q := transport.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\nd=%s a=%s\n", q(p.dir), q(aside))
	for _, m := range p.manifests {
		f := q(m + ".yaml")
		fmt.Fprintf(&b, `if [ -e "$d"/%[1]s ]; then printf '%%s/%%s is in place already\n' "$d" %[1]s
elif [ -e "$a"/%[1]s ]; then cp -p -- "$a"/%[1]s "$d"/.%[2]s.ezrestore-tmp && mv -f -- "$d"/.%[2]s.ezrestore-tmp "$d"/%[1]s && printf 'note: put %%s back into %%s (a copy stays in %%s)\n' %[1]s "$d" "$a"
else printf 'no %%s in %%s to put back into %%s\n' %[1]s "$a" "$d" >&2; exit 1
fi
`, f, m)
	}
	return strings.TrimRight(b.String(), "\n")
}

// checkEtcdShape refuses, before anything changes, a playbook that would
// stop and start etcd the wrong way for this host: systemd for a static pod
// (the kubelet would start it again at once), or manifests for a unit.
func checkEtcdShape(env *orchestrator.Env, h *inventory.Host, f *etcdhost.EtcdFacts) error {
	byManifest := orchestrator.StepOf[*StaticPods](env) >= 0
	sp := f.Config.StaticPod
	switch {
	case sp != nil && !byManifest:
		return staticPodsUnderUnitPlaybook(env, h)
	case sp == nil && byManifest:
		return fmt.Errorf("etcd on %s runs from a systemd unit (no %s), but playbook %s stops and starts static pods: remove etcd_deployment_type=kubeadm from the inventory, or give the playbook for units with --playbook",
			h.Name, etcdhost.EtcdManifestPath, env.Playbook.Name)
	}
	return nil
}

// staticPodsUnderUnitPlaybook is the refusal of a playbook of systemd units
// on a host whose etcd is kubeadm's static pod.
func staticPodsUnderUnitPlaybook(env *orchestrator.Env, h *inventory.Host) error {
	return fmt.Errorf("etcd on %s is a static pod of the kubelet (%s), but playbook %q stops and starts systemd units, which would not stop it; say etcd_deployment_type=kubeadm in the inventory (ezrestore then uses its static-pod playbook, playbooks/restore-kubeadm.yml)",
		h.Name, etcdhost.EtcdManifestPath, env.Playbook.Name)
}
