package lab_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// TestKubeReal brings the default lab up with the real control plane on
// etcd 3.6 and uses it as an operator would: the cached kubectl with the
// cluster dir's kubectl.kubeconfig, /readyz on every master, a pod made
// with `kubectl run` that the real scheduler finds no node for, and the
// pod's key in etcd. It reports the time `lab up` took and the lab's memory.
func TestKubeReal(t *testing.T) {
	warm := lab.KubeBuilt()
	start := time.Now()
	l := labtest.Up(t, lab.Options{Name: "kube-e2e", Kube: lab.KubeReal, EtcdVersion: "3.6"})
	took := time.Since(start)
	t.Logf("lab up --kube real (kube cache warm: %v) took %s", warm, took.Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if !strings.HasPrefix(l.EtcdRelease, "3.6.") {
		t.Fatalf("etcd %s, want 3.6", l.EtcdRelease)
	}

	for _, p := range []string{l.KubeconfigPath(), l.Dir.SSLDir() + "/admin-key.pem"} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want a 0600 file", p, err)
		}
	}
	if target, err := os.Readlink(l.KubectlPath()); err != nil || !strings.HasPrefix(target, lab.KubeDir()) {
		t.Errorf("%s -> %q (%v), want a link into %s", l.KubectlPath(), target, err, lab.KubeDir())
	}

	out, err := l.Kubectl(ctx, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "Server Version: v"+lab.KubeVersion) || !strings.Contains(string(out), "Client Version: v"+lab.KubeVersion) {
		t.Fatalf("kubectl version:\n%s", out)
	}
	t.Logf("kubectl version:\n%s", out)

	for _, h := range l.Masters() {
		if err := l.Readyz(ctx, h.Address); err != nil {
			t.Errorf("readyz: %v", err)
		}
		// The master's own admin kubeconfig and kubectl work there, as on kubeasz.
		out, err := l.Exec(ctx, h.Address, "/opt/kube/bin/kubectl get --raw /readyz")
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			t.Errorf("%s: kubectl on the master: %v %q", h.Address, err, out)
		}
		// The control plane is the real one, and the nodes' units stand-ins.
		out, err = l.Exec(ctx, h.Address, "/opt/kube/bin/kube-scheduler --version; systemctl show -p ExecStart --value kubelet")
		if err != nil || !strings.Contains(string(out), "Kubernetes v"+lab.KubeVersion) || !strings.Contains(string(out), "/opt/kube/bin/kubelet") {
			t.Errorf("%s: %v\n%s", h.Address, err, out)
		}
	}
	for _, h := range l.Nodes() {
		if err := l.Readyz(ctx, h.Address); err == nil {
			t.Errorf("Readyz of node %s succeeded; nodes run no apiserver", h.Address)
		}
	}

	// Every listener of the control plane is on a master's own address:
	// the hosts share the machine's network namespace.
	ss, err := exec.Command("ss", "-Hltn").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ss), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		for _, port := range []string{":6443", ":10257", ":10259"} {
			if strings.HasSuffix(f[3], port) && !strings.HasPrefix(f[3], "127.") {
				t.Errorf("a wildcard listener on %s: %s", port, line)
			}
		}
	}
	for _, h := range l.Masters() {
		for _, port := range []string{"6443", "10257", "10259"} {
			if !strings.Contains(string(ss), " "+h.Address+":"+port+" ") {
				t.Errorf("nothing listens on %s:%s", h.Address, port)
			}
		}
	}

	if out, err := l.Kubectl(ctx, "run", "net-test1", "--image=busybox"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = l.Kubectl(ctx, "get", "pods", "-o", "name")
	if err != nil || strings.TrimSpace(string(out)) != "pod/net-test1" {
		t.Fatalf("kubectl get pods: %v\n%s", err, out)
	}
	// The real scheduler looks at the pod and finds no node for it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err = l.Kubectl(ctx, "get", "pod", "net-test1", "-o",
			`jsonpath={.status.phase} {.status.conditions[?(@.type=="PodScheduled")].reason}`)
		if err == nil && strings.TrimSpace(string(out)) == "Pending Unschedulable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("net-test1 not reported Unschedulable by the scheduler: %v %q", err, out)
		}
		time.Sleep(time.Second)
	}
	// The apiserver keeps the pod in the lab's etcd, under kubeasz's prefix.
	e := l.EtcdHosts()[0].Address
	out, err = l.Exec(ctx, e, l.EtcdctlCmd(e)+" get --keys-only /registry/pods/default/net-test1")
	if err != nil || !strings.Contains(string(out), "/registry/pods/default/net-test1") {
		t.Errorf("etcd has no key for net-test1: %v %q", err, out)
	}

	m := l.Memory()
	t.Logf("lab memory with the real control plane: %s", m)
	if m.PSS > 3<<30 {
		t.Errorf("the lab uses %d MiB (PSS), more than 3 GiB", m.PSS>>20)
	}
	if m.ByUnit["kube-apiserver"] == 0 || m.ByUnit["kube-controller-manager"] == 0 || m.ByUnit["kube-scheduler"] == 0 {
		t.Errorf("control plane processes not found in the lab's cgroups: %s", m)
	}

	// A second `lab up` of the running lab returns it after a health check.
	start = time.Now()
	if _, err := lab.Up(ctx, l.Opts); err != nil {
		t.Fatalf("lab up over the running lab: %v", err)
	}
	t.Logf("lab up over the running lab took %s", time.Since(start).Round(100*time.Millisecond))

	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	assertGone(t, l)
	for _, h := range l.Masters() {
		for _, port := range []string{"6443", "10257", "10259"} {
			if err := dial(h.Address + ":" + port); err == nil {
				t.Errorf("something still listens on %s:%s", h.Address, port)
			}
		}
	}
	if _, err := os.Lstat(l.KubectlPath()); err == nil {
		t.Errorf("%s remains after lab down", l.KubectlPath())
	}
	if _, err := os.Stat(l.KubeconfigPath()); err == nil {
		t.Errorf("%s remains after lab down", l.KubeconfigPath())
	}
}
