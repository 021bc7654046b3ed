package etcdhost

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/ezrestore/ezrestore/transport"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Static-pod etcd (kubeadm, kubespray's etcd_deployment_type=kubeadm): the
// kubelet runs etcd from a pod manifest in its manifest dir. Every setting a
// restore reads from a systemd unit elsewhere is read from the manifest: the
// container's command and args (and ETCD_* environment), with each path
// taken through the pod's hostPath volumes to where it is on the host.

// KubeletManifestDir is where kubeadm's kubelet reads static pods from.
const KubeletManifestDir = "/etc/kubernetes/manifests"

// EtcdManifestPath is kubeadm's etcd static pod manifest.
const EtcdManifestPath = KubeletManifestDir + "/etcd.yaml"

// StaticPod is what a restore needs of an etcd static pod beyond the
// settings EtcdConfig holds.
type StaticPod struct {
	// Manifest is the manifest's path on the host.
	Manifest string `json:"manifest"`
	// ManifestDir is the kubelet's manifest dir (the manifest's dir).
	ManifestDir string `json:"manifest_dir"`
	// Pod and Namespace name the pod (its mirror pod is <pod>-<node>).
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	// Container is the etcd container's name, as the runtime labels it.
	Container string `json:"container"`
	// Image is the container's image; ImageVersion the etcd version its tag
	// names ("3.6.5" of registry.k8s.io/etcd:3.6.5-0), "" when it names none.
	Image        string `json:"image"`
	ImageVersion string `json:"image_version,omitempty"`
	// ContainerPaths maps each host path the restore uses (data dir, WAL dir,
	// certificates) back to the path the container sees, for messages.
	ContainerPaths map[string]string `json:"container_paths,omitempty"`
}

// etcdImageVersionRE reads the etcd version in an image tag:
// registry.k8s.io/etcd:3.6.5-0, quay.io/coreos/etcd:v3.5.21.
var etcdImageVersionRE = regexp.MustCompile(`:v?(\d+\.\d+\.\d+)(?:-[0-9A-Za-z.]+)?(?:@.*)?$`)

// ParseEtcdManifest reads an etcd static pod manifest (file names the
// manifest in errors) into the settings a restore uses, with every path
// resolved to where it is on the host. A path setting that no hostPath
// volume of the pod holds is an error naming the flag and the volumes:
// a restore into such a path would write where etcd never looks.
func ParseEtcdManifest(file, text string) (*EtcdConfig, error) {
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(text), &pod); err != nil {
		// Strict first: a misspelt field in a manifest is worth saying;
		// the kubelet itself decodes leniently, so fall back to that.
		if err2 := yaml.Unmarshal([]byte(text), &pod); err2 != nil {
			return nil, fmt.Errorf("%s: not a pod manifest: %v", file, err2)
		}
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, fmt.Errorf("%s: kind %s, want a Pod", file, pod.Kind)
	}
	var ctr *corev1.Container
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cmd := append(append([]string{}, c.Command...), c.Args...)
		if c.Name == "etcd" || (len(cmd) > 0 && path.Base(cmd[0]) == "etcd") {
			ctr = c
			break
		}
	}
	if ctr == nil {
		return nil, fmt.Errorf("%s: pod %s has no etcd container (none named etcd or running etcd)", file, pod.Name)
	}
	args := append(append([]string{}, ctr.Command...), ctr.Args...)
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: container %s has no command: etcd's settings cannot be read from the image's default", file, ctr.Name)
	}
	ns := pod.Namespace
	if ns == "" {
		ns = "default"
	}
	sp := &StaticPod{Manifest: file, ManifestDir: path.Dir(file), Pod: pod.Name, Namespace: ns,
		Container: ctr.Name, Image: ctr.Image, ContainerPaths: map[string]string{}}
	if m := etcdImageVersionRE.FindStringSubmatch(ctr.Image); m != nil {
		sp.ImageVersion = m[1]
	}
	env := map[string]string{}
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	c := &EtcdConfig{Binary: args[0], User: "root", From: map[string]string{}, StaticPod: sp}
	field := c.fields()
	where := fmt.Sprintf("%s (container %s)", file, ctr.Name)
	for _, s := range etcdSettings {
		envKey := "ETCD_" + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_"))
		if v, ok := flagValue(args, s.flag); ok {
			*field[s.flag] = v
			c.From[s.flag] = where + " --" + s.flag
		} else if v, ok := env[envKey]; ok {
			*field[s.flag] = v
			c.From[s.flag] = where + " env " + envKey
		}
	}
	if _, ok := flagValue(args, "config-file"); ok {
		return nil, fmt.Errorf("%s: etcd reads --config-file inside the container; ezrestore reads static-pod etcd from its command line only", file)
	}
	if c.Name == "" {
		c.Name, c.From["name"] = "default", "etcd default"
	}
	if c.DataDir == "" {
		c.DataDir, c.From["data-dir"] = c.Name+".etcd", "etcd default"
	}
	if !path.IsAbs(c.DataDir) {
		wd := ctr.WorkingDir
		if wd == "" {
			wd = "/"
		}
		c.DataDir = path.Join(wd, c.DataDir)
	}
	if c.PeerURL == "" {
		c.PeerURL, c.From["initial-advertise-peer-urls"] = "http://localhost:2380", "etcd default"
	}
	if c.ClientURLs == "" {
		c.ClientURLs, c.From["advertise-client-urls"] = "http://localhost:2379", "etcd default"
	}

	// Container paths to host paths, through the hostPath volumes.
	hostPaths := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for _, flag := range []string{"data-dir", "wal-dir", "cert-file", "key-file", "trusted-ca-file", "peer-cert-file", "peer-trusted-ca-file"} {
		p := field[flag]
		if *p == "" {
			continue
		}
		hp, err := toHostPath(*p, ctr.VolumeMounts, hostPaths)
		if err != nil {
			return nil, fmt.Errorf("%s: --%s=%s (%s): %v", file, flag, *p, c.From[flag], err)
		}
		sp.ContainerPaths[hp] = *p
		*p = hp
	}
	return c, nil
}

// toHostPath finds the volume mount holding container path p (the deepest
// one) and returns p on the host; only hostPath volumes reach the host.
func toHostPath(p string, mounts []corev1.VolumeMount, hostPaths map[string]string) (string, error) {
	p = path.Clean(p)
	var best *corev1.VolumeMount
	for i := range mounts {
		m := &mounts[i]
		mp := path.Clean(m.MountPath)
		if p == mp || strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/") {
			if best == nil || len(mp) > len(path.Clean(best.MountPath)) {
				best = m
			}
		}
	}
	if best == nil {
		var have []string
		for _, m := range mounts {
			if hp, ok := hostPaths[m.Name]; ok {
				have = append(have, fmt.Sprintf("volume %s: hostPath %s mounted at %s", m.Name, hp, m.MountPath))
			}
		}
		if len(have) == 0 {
			return "", fmt.Errorf("the pod mounts no hostPath volume, so this path is inside the container and lost with it")
		}
		return "", fmt.Errorf("no volume of the pod holds this path, so it is inside the container and lost with it; the pod's hostPath volumes are %s", strings.Join(have, "; "))
	}
	hp, ok := hostPaths[best.Name]
	if !ok {
		return "", fmt.Errorf("it is on volume %s (mounted at %s), which is not a hostPath volume", best.Name, best.MountPath)
	}
	if best.SubPath != "" {
		hp = path.Join(hp, best.SubPath)
	}
	rel := strings.TrimPrefix(p, path.Clean(best.MountPath))
	return path.Clean(hp + "/" + rel), nil
}

// fields maps each setting's flag to its field.
func (c *EtcdConfig) fields() map[string]*string {
	return map[string]*string{
		"name": &c.Name, "data-dir": &c.DataDir, "wal-dir": &c.WalDir,
		"initial-advertise-peer-urls": &c.PeerURL, "advertise-client-urls": &c.ClientURLs,
		"cert-file": &c.CertFile, "key-file": &c.KeyFile, "trusted-ca-file": &c.TrustedCAFile,
		"peer-cert-file": &c.PeerCertFile, "peer-trusted-ca-file": &c.PeerTrustedCAFile,
		"quota-backend-bytes": &c.QuotaBackendBytes,
	}
}

// staticPodActiveScript prints "active" when the runtime runs a container
// of the etcd static pod, else "inactive" ("unknown: ..." when no runtime
// client answers): crictl where installed (kubeadm's hosts have it), else
// containerd's ctr in the kubelet's k8s.io namespace.
func staticPodActiveScript(sp *StaticPod) string {
	q := transport.Quote
	// One line: it is also part of the put-back command printed for operators.
	return fmt.Sprintf(`if command -v crictl >/dev/null 2>&1; then if ids=$(crictl ps -q --state running --name %[1]s --label io.kubernetes.pod.namespace=%[2]s 2>/dev/null); then if [ -n "$ids" ]; then echo active; else echo inactive; fi; else echo "unknown: crictl ps failed"; fi; `+
		`elif command -v ctr >/dev/null 2>&1; then if ids=$(ctr -n k8s.io containers ls -q 'labels."io.kubernetes.container.name"=='%[3]s',labels."io.kubernetes.pod.namespace"=='%[2]s 2>/dev/null); then st=inactive; for id in $ids; do if ctr -n k8s.io tasks ls 2>/dev/null | awk -v id="$id" '$1 == id && $3 == "RUNNING" {f=1} END {exit !f}'; then st=active; fi; done; echo $st; else echo "unknown: ctr containers ls failed"; fi; `+
		`else echo "unknown: neither crictl nor ctr on the host"; fi`, q("^"+regexp.QuoteMeta(sp.Container)+"$"), q(sp.Namespace), q(sp.Container))
}

// staticPodProbeScript runs in readEtcdConfig's first round trip: kubeadm's
// etcd manifest, when there is one, and whether its container runs (asked
// by kubeadm's container name and namespace; staticPodConfig asks again
// when the manifest names others).
func staticPodProbeScript() string {
	// The runtime is asked only where the manifest is: a host with
	// containerd installed but not running (a systemd-shaped host) would
	// hold ctr on its socket for seconds in every gather.
	return fmt.Sprintf("echo @@manifest\nif [ -f %[1]s ]; then cat -- %[1]s; echo; echo @@podactive\n(\n%[2]s\n); else echo @@nomanifest; fi",
		transport.Quote(EtcdManifestPath), staticPodActiveScript(&StaticPod{Container: "etcd", Namespace: "kube-system"}))
}

// unitAbsent tells whether the first round's etcd.service section says
// there is no unit to read: none, or masked (how a kubeadm host that once
// had Debian's etcd package looks).
func unitAbsent(s map[string]string) bool {
	if _, missing := s["nounit"]; missing {
		return true
	}
	return strings.Contains(s["unit"], "etcd.service is masked")
}

// StaticPodSeen tells, from the sections of a round trip that ran
// staticPodProbeScript (every GatherEtcd's first), whether the host has
// kubeadm's etcd manifest and no etcd.service to read.
func StaticPodSeen(s map[string]string) bool {
	_, none := s["nomanifest"]
	return !none && s["manifest"] != "" && unitAbsent(s)
}

// staticPodConfig reads etcd from its static pod manifest when the host has
// one and no etcd.service to read (ok false: read the unit). A host with
// both an etcd.service and an etcd manifest is refused: which one runs the
// member is not for ezrestore to guess. s["active"] becomes the pod's state.
func staticPodConfig(ctx context.Context, conn transport.Conn, s map[string]string) (*EtcdConfig, bool, error) {
	if _, none := s["nomanifest"]; none || s["manifest"] == "" && s["podactive"] == "" {
		return nil, false, nil
	}
	if !unitAbsent(s) {
		return nil, true, fmt.Errorf("the host has both an etcd.service unit and the static pod manifest %s: move the one that does not run this member away, then run ezrestore again", EtcdManifestPath)
	}
	cfg, err := ParseEtcdManifest(EtcdManifestPath, s["manifest"])
	if err != nil {
		return nil, true, err
	}
	active := strings.TrimSpace(s["podactive"])
	if sp := cfg.StaticPod; sp.Container != "etcd" || sp.Namespace != "kube-system" {
		res, err := conn.Run(ctx, staticPodActiveScript(sp))
		if err != nil {
			return nil, true, err
		}
		active = strings.TrimSpace(string(res.Stdout))
	}
	s["active"] = active
	return cfg, true, nil
}

// StaticPodRunningScript prints "active" while a container named container
// of a pod in namespace runs on the host, "inactive" when none does, and
// "unknown: ..." when no runtime client answers.
func StaticPodRunningScript(container, namespace string) string {
	return staticPodActiveScript(&StaticPod{Container: container, Namespace: namespace})
}

// ManifestsAside is where a restore keeps the manifests it moved out of the
// kubelet's manifest dir: <dir>/../ezrestore-<token>, never deleted.
func ManifestsAside(manifestDir, token string) string {
	return path.Join(path.Dir(path.Clean(manifestDir)), "ezrestore-"+token)
}

// StaticPodStoppedScript refuses, on the host, to go on while the etcd
// static pod's container runs: its data dir is about to move.
func StaticPodStoppedScript(sp *StaticPod) string {
	return fmt.Sprintf(`st=$(
%s
)
case $st in
inactive) ;;
active) printf 'the etcd static pod (%%s) still runs: its manifest must be out of %%s before its data moves\n' %s %s >&2; exit 1;;
*) printf '%%s\n' "$st" >&2; exit 1;;
esac`, staticPodActiveScript(sp), transport.Quote(sp.Manifest), transport.Quote(sp.ManifestDir))
}

// PutBackCommandFor is the put-back command of one host for how its etcd
// runs: PutBackCommand for a systemd unit, and for a static pod the same
// moves between taking the manifest out of the kubelet's dir (for the run's
// dir), waiting its container out, and putting a copy of it back.
func PutBackCommandFor(st Stage, token string, c *EtcdConfig) string {
	sp := c.StaticPod
	if sp == nil {
		return PutBackCommand(st, token)
	}
	q := transport.Quote
	name := path.Base(sp.Manifest)
	aside := ManifestsAside(sp.ManifestDir, token)
	cmd := fmt.Sprintf(`set -e; m=%[1]s; a=%[2]s; mkdir -p -m 0700 -- "$a"; if [ -e "$m" ]; then mv -f -- "$m" "$a"/%[3]s; fi; n=0; while [ "$(%[4]s)" != inactive ]; do [ $n -lt 180 ] || { echo "etcd's container still runs 180 s after its manifest left" >&2; exit 1; }; sleep 2; n=$((n+2)); done`,
		q(sp.Manifest), q(aside), q(name), staticPodActiveScript(sp))
	cmd += "; " + putBackOne(st.Member, st.Aside, st.Restored, st.MemberInPlace)
	if st.LiveWal != "" {
		cmd += "; " + putBackOne(st.LiveWal, st.AsideWal, st.RestoredWal, st.WalInPlace)
	}
	return cmd + fmt.Sprintf(`; cp -p -- "$a"/%[1]s %[2]s && mv -f -- %[2]s "$m"`, q(name), q(path.Join(sp.ManifestDir, "."+name+".ezrestore-tmp")))
}

// ManifestFlag is the value of --name in the first container of the static
// pod manifest at file on the host, found false when the container does not
// set it; a path value (isPath) is taken through the pod's hostPath volumes
// to where it is on the host. It reads what a kubeadm host runs where
// others have a unit (see UnitFlag); a missing manifest is an error.
func ManifestFlag(ctx context.Context, conn transport.Conn, file, name string, isPath bool) (value string, found bool, err error) {
	res, err := conn.Run(ctx, "cat -- "+transport.Quote(file))
	if err != nil {
		return "", false, err
	}
	if res.ExitCode != 0 {
		return "", false, fmt.Errorf("%s: %s", file, strings.TrimSpace(string(res.Stderr)))
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(res.Stdout, &pod); err != nil {
		return "", false, fmt.Errorf("%s: not a pod manifest: %v", file, err)
	}
	if len(pod.Spec.Containers) == 0 {
		return "", false, fmt.Errorf("%s: the pod has no container", file)
	}
	c := pod.Spec.Containers[0]
	value, found = flagValue(append(append([]string{}, c.Command...), c.Args...), name)
	if !found || !isPath {
		return value, found, nil
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	hp, err := toHostPath(value, c.VolumeMounts, hostPaths)
	if err != nil {
		return "", false, fmt.Errorf("%s: --%s=%s: %v", file, name, value, err)
	}
	return hp, true, nil
}
