package restore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
	"github.com/ezrestore/ezrestore/playbooks"
)

// TestRestoreKubeadmStaticPods restores a kubeadm-shaped lab (issue 23):
// real kubelets and containerd, etcd and the control plane as static pods.
// First a manifest whose --data-dir no hostPath volume holds is refused
// before any change, naming both; then pods made with kubectl run, a
// backup, one pod deleted and one made after it, and `restore --snapshot
// latest --yes`: the deleted pod is back and runs, the later one is gone
// from the API and its container stopped by its kubelet, the etcd static
// pods are one cluster with one leader, the manifests are back unchanged,
// the moved ones are kept and listed, and the nodes' leases renew. Every
// judgment is the lab's own (kubectl, its etcdctl, ctr on the hosts).
func TestRestoreKubeadmStaticPods(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "kubeadm-e2e", Kubeadm: true, Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	name := l.Opts.Name
	masters, node := l.Masters(), l.Nodes()[0]
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := l.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	manifests := func() map[string]string {
		m := map[string]string{}
		for _, h := range masters {
			m[h.Address] = sh(t, l, h.Address, "cd "+lab.KubeadmManifestsDir+" && sha256sum *.yaml && ls -a /etc/kubernetes")
		}
		return m
	}

	// Ordinary pods on the worker, on the host network (the lab has no pod network).
	run := func(pod string) {
		kubectl("run", pod, "--image=busybox:lab", `--overrides={"apiVersion":"v1","spec":{"hostNetwork":true,"nodeName":"`+node.Machine+`"}}`, "--", "sleep", "1000000")
	}
	run("keep")
	run("gone")
	kubectl("wait", "--for=condition=Ready", "pod/keep", "pod/gone", "--timeout=120s")
	// A Secret, encrypted at rest by the apiservers' EncryptionConfiguration:
	// preflight checks the masters' config (read from the apiserver's static
	// pod) holds its key.
	kubectl("create", "secret", "generic", "kept", "--from-literal=k=v")
	if _, err := cli(t, l, "backup", name); err != nil {
		t.Fatalf("backup: %v", err)
	}
	t.Run("data dir outside the hostPath volume is refused", func(t *testing.T) {
		m := masters[0].Address
		etcdYAML := lab.KubeadmManifestsDir + "/etcd.yaml"
		// The kubelet must not act on the edited manifest: stopped, it
		// leaves the running containers alone.
		sh(t, l, m, "systemctl stop kubelet && cp -p "+etcdYAML+" /root/etcd.yaml.orig && sed -i 's#--data-dir=/var/lib/etcd$#--data-dir=/var/lib/etcd-elsewhere#' "+etcdYAML)
		defer sh(t, l, m, "cp -p /root/etcd.yaml.orig "+etcdYAML+" && systemctl start kubelet")
		before := manifests()
		out, err := cli(t, l, "restore", name, "--snapshot", "latest", "--yes")
		if err == nil {
			t.Fatalf("restore with a data dir outside the pod's volumes succeeded:\n%s", out)
		}
		requireContains(t, "refusal", out, m, "--data-dir=/var/lib/etcd-elsewhere", "volume etcd-data: hostPath /var/lib/etcd mounted at /var/lib/etcd",
			"Nothing was changed on any host")
		for addr, b := range before {
			if a := manifests()[addr]; a != b {
				t.Fatalf("the refused restore changed %s:\nbefore:\n%s\nafter:\n%s", addr, b, a)
			}
		}
	})
	t.Run("a playbook for units is refused on static pods", func(t *testing.T) {
		pb := filepath.Join(t.TempDir(), "restore.yml")
		if err := os.WriteFile(pb, playbooks.Restore, 0o600); err != nil {
			t.Fatal(err)
		}
		before := manifests()
		out, err := cli(t, l, "restore", name, "--snapshot", "latest", "--yes", "--playbook", pb)
		if err == nil {
			t.Fatalf("the systemd playbook ran on static pods:\n%s", out)
		}
		requireContains(t, "refusal", out, "is a static pod of the kubelet (/etc/kubernetes/manifests/etcd.yaml)", "etcd_deployment_type=kubeadm", "Nothing was changed on any host")
		for addr, b := range before {
			if a := manifests()[addr]; a != b {
				t.Fatalf("the refused restore changed %s:\nbefore:\n%s\nafter:\n%s", addr, b, a)
			}
		}
	})
	if t.Failed() {
		return
	}
	requireHealthy(t, l)

	run("late")
	kubectl("wait", "--for=condition=Ready", "pod/late", "--timeout=120s")
	kubectl("delete", "pod", "gone", "--wait=true", "--timeout=120s")
	lateCtr := containerOf(t, l, node.Address, "late")
	if lateCtr == "" {
		t.Fatalf("no running container of pod late on %s", node.Address)
	}
	before := manifests()
	var etcdCtrs []string
	for _, h := range masters {
		etcdCtrs = append(etcdCtrs, containerOf(t, l, h.Address, "etcd-"+h.Machine))
	}

	restoreStart := time.Now()
	out, err := cli(t, l, "restore", name, "--snapshot", "latest", "--yes")
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	token := ""
	if i := strings.Index(out, "with token "); i >= 0 {
		token = strings.TrimSuffix(strings.Fields(out[i+len("with token "):])[0], ".")
	}
	if token == "" {
		t.Fatalf("restore output names no token")
	}

	// One cluster, one leader, every member restarted on restored data.
	h := requireHealthy(t, l)
	if len(h.Members) != len(masters) {
		t.Fatalf("want %d members:\n%s", len(masters), h)
	}
	for i, m := range masters {
		if now := containerOf(t, l, m.Address, "etcd-"+m.Machine); now == "" || now == etcdCtrs[i] {
			t.Fatalf("%s: etcd's container %q is the one from before the restore (%q), or none runs", m.Address, now, etcdCtrs[i])
		}
	}
	// The manifests are back unchanged; the moved ones are kept and listed.
	aside := "/etc/kubernetes/ezrestore-" + token
	for _, m := range masters {
		got := sh(t, l, m.Address, "cd "+lab.KubeadmManifestsDir+" && sha256sum *.yaml")
		if !strings.HasPrefix(before[m.Address], got+"\n") {
			t.Fatalf("%s: manifests after the restore:\n%s\nbefore:\n%s", m.Address, got, before[m.Address])
		}
		kept := sh(t, l, m.Address, "cd "+aside+" && sha256sum *.yaml")
		if kept != got {
			t.Fatalf("%s: kept copies in %s differ from the manifests:\n%s\n%s", m.Address, aside, kept, got)
		}
	}
	for _, f := range []string{"etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"} {
		requireContains(t, "restore", out, "moved /etc/kubernetes/manifests/"+f+" to "+aside+"/ (kept)")
	}

	// Pods: the deleted one is back and runs, the later one is gone and its container stopped.
	kubectl("wait", "--for=condition=Ready", "pod/gone", "pod/keep", "--timeout=180s")
	if got := kubectl("get", "secret", "kept", "-o", "jsonpath={.data.k}"); got != "dg==" {
		t.Fatalf("secret kept after the restore: %q, want base64 of v", got)
	}
	if out, err := l.Kubectl(ctx, "get", "pod", "late"); err == nil {
		t.Fatalf("pod late, made after the backup, is still in the API: %s", out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for containerOf(t, l, node.Address, "late") != "" {
		if time.Now().After(deadline) {
			t.Fatalf("pod late's container still runs on %s", node.Address)
		}
		time.Sleep(2 * time.Second)
	}
	// Every node's lease renews after the restore.
	for _, n := range append(append([]lab.Host{}, masters...), node) {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			rt := kubectl("-n", "kube-node-lease", "get", "lease", n.Machine, "-o", "jsonpath={.spec.renewTime}")
			if at, err := time.Parse(time.RFC3339Nano, rt); err == nil && at.After(restoreStart) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s's lease not renewed since the restore began (renewTime %s)", n.Machine, rt)
			}
			time.Sleep(2 * time.Second)
		}
	}

	// Rollback: the data from before the restore comes back (late there, gone
	// not), with the manifests moved and put back the same way.
	out, err = cli(t, l, "rollback", name, "--yes")
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	requireContains(t, "rollback", out, "moved /etc/kubernetes/manifests/etcd.yaml to /etc/kubernetes/ezrestore-rollback-"+token+"/ (kept)")
	requireHealthy(t, l)
	// The rollback does not wait for the apiservers (no kube-ready step).
	for deadline := time.Now().Add(3 * time.Minute); l.Readyz(ctx, masters[0].Address) != nil; time.Sleep(2 * time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: kube-apiserver not ready 3 minutes after the rollback: %v", masters[0].Address, l.Readyz(ctx, masters[0].Address))
		}
	}
	kubectl("wait", "--for=condition=Ready", "pod/late", "pod/keep", "--timeout=180s")
	if out, err := l.Kubectl(ctx, "get", "pod", "gone"); err == nil {
		t.Fatalf("pod gone, deleted before the restore, is in the API after the rollback: %s", out)
	}
	for _, m := range masters {
		if got := sh(t, l, m.Address, "cd "+lab.KubeadmManifestsDir+" && sha256sum *.yaml"); !strings.HasPrefix(before[m.Address], got+"\n") {
			t.Fatalf("%s: manifests after the rollback:\n%s\nbefore:\n%s", m.Address, got, before[m.Address])
		}
	}
}

// containerOf is the ID of the running container of pod (by name, any
// namespace) on host addr, as the host's containerd reports it, or "".
func containerOf(t *testing.T, l *lab.Lab, addr, pod string) string {
	t.Helper()
	return sh(t, l, addr, `for id in $(ctr -n k8s.io containers ls -q 'labels."io.kubernetes.pod.name"==`+pod+`'); do
  ctr -n k8s.io containers info "$id" | grep -q '"io.cri-containerd.kind": "container"' || continue
  ctr -n k8s.io tasks ls | awk -v id="$id" '$1 == id && $3 == "RUNNING" {print id}'
done`)
}
