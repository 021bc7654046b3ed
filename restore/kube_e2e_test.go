package restore_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// TestRestoreThroughTheAPI is the seed's story on a real Kubernetes control
// plane (etcd 3.6, kube-apiserver v1.34): pods made with kubectl, a backup,
// net-test3 deleted, a restore verified through the API (/readyz of every
// master, --expect read back). It checks with kubectl and the lab's own
// /readyz client, not with ezrestore's code; then shows that a watch from
// before the bumped restore is told to relist (410 Gone), and that an
// apiserver that cannot start fails the restore naming its host.
func TestRestoreThroughTheAPI(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "kr-e2e", Kube: lab.KubeReal, Nodes: 1, EtcdVersion: "3.6"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := l.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	name := l.Opts.Name

	kubectl("run", "net-test1", "--image=busybox")
	kubectl("run", "net-test3", "--image=busybox")
	if _, err := cli(t, l, "backup", name); err != nil {
		t.Fatalf("backup: %v", err)
	}
	kubectl("delete", "pod", "net-test3", "--wait=true", "--timeout=60s")
	if out, err := l.Kubectl(ctx, "get", "pod", "net-test3"); err == nil {
		t.Fatalf("net-test3 still there after delete: %s", out)
	}
	// A resourceVersion from before the restore, as a client watching pods holds it.
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(kubectl("get", "--raw", "/api/v1/namespaces/default/pods")), &list); err != nil || list.Metadata.ResourceVersion == "" {
		t.Fatalf("listing pods for a resourceVersion: %v %+v", err, list)
	}
	rv := list.Metadata.ResourceVersion

	out, err := cli(t, l, "plan", name, "--snapshot", "latest", "--expect", "pod/default/net-test3", "--expect", "pod/default/never-made")
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	requireContains(t, "plan", out, "the snapshot holds pod/default/net-test3",
		"Warning: the snapshot does not hold pod/default/never-made",
		"wait for kube-apiserver ready", "/readyz every", "read back expected objects", "GET /api/v1/namespaces/default/pods/net-test3")
	for _, m := range l.Masters() {
		requireContains(t, "plan", out, m.Address+": kube-ready: GET https://"+m.Address+":6443/readyz")
	}
	out, err = cli(t, l, "plan", name, "--snapshot", "latest", "--no-api-check")
	if err != nil {
		t.Fatalf("plan --no-api-check: %v", err)
	}
	requireContains(t, "plan --no-api-check", out, "note: skipped: --no-api-check given")

	out, err = cli(t, l, "restore", name, "--snapshot", "latest", "--yes", "--expect", "pod/default/net-test3")
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	requireContains(t, "restore", out, "pod/default/net-test3 is back", "/readyz: ok after")

	if got := kubectl("get", "pod", "net-test3", "-o", "jsonpath={.metadata.name}"); got != "net-test3" {
		t.Fatalf("kubectl get pod net-test3: %q", got)
	}
	for _, m := range l.Masters() {
		if err := l.Readyz(ctx, m.Address); err != nil {
			t.Errorf("after the restore: %v", err)
		}
	}
	if v := kubectl("version"); !strings.Contains(v, "Server Version: v"+lab.KubeVersion) {
		t.Errorf("kubectl version:\n%s", v)
	}

	// The revision jumped past the snapshot's and the old ones are marked
	// compacted: a watch resumed from before the restore must relist.
	wout, werr := l.Kubectl(ctx, "get", "--raw", "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=5&resourceVersion="+rv)
	seen := string(wout)
	if werr != nil {
		seen += werr.Error()
	}
	t.Logf("watch from resourceVersion %s after the restore: %s", rv, seen)
	if !strings.Contains(seen, "too old resource version") || !strings.Contains(seen, "410") {
		t.Errorf("a watch from resourceVersion %s (before the restore) was not told 410 Gone / too old resource version: %s", rv, seen)
	}
	out, err = cli(t, l, "plan", name, "--snapshot", "latest", "--no-bump-revision")
	if err != nil {
		t.Fatalf("plan --no-bump-revision: %v", err)
	}
	requireContains(t, "plan --no-bump-revision", out, "Warning: --no-bump-revision: revisions rewind", "are not sent 410 Gone and do not relist")

	// An apiserver that cannot start: the restore stops naming the host and kube-apiserver.
	bad := l.Masters()[len(l.Masters())-1].Address
	sh(t, l, bad, "mkdir -p /etc/systemd/system/kube-apiserver.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' > /etc/systemd/system/kube-apiserver.service.d/broken.conf && systemctl daemon-reload")
	out, err = cli(t, l, "restore", name, "--snapshot", "latest", "--yes", "--expect", "pod/default/net-test3")
	if err == nil {
		t.Fatalf("restore with a broken kube-apiserver on %s succeeded", bad)
	}
	requireContains(t, "restore with a broken apiserver", out, bad, "kube-apiserver", "--from-step")
	step := "start kube masters"
	if i := strings.Index(out, "--from-step '"); i >= 0 {
		rest := out[i+len("--from-step '"):]
		step = rest[:strings.Index(rest, "'")]
	}
	sh(t, l, bad, "rm /etc/systemd/system/kube-apiserver.service.d/broken.conf && systemctl daemon-reload")
	if _, err := cli(t, l, "restore", name, "--snapshot", "latest", "--yes", "--expect", "pod/default/net-test3", "--from-step", step); err != nil {
		t.Fatalf("resume from %q: %v", step, err)
	}
	for _, m := range l.Masters() {
		if err := l.Readyz(ctx, m.Address); err != nil {
			t.Errorf("after the resumed restore: %v", err)
		}
	}
	kubectl("get", "pod", "net-test3")

	// An apiserver that starts, then keeps crashing: the ready step stops
	// within seconds (not at the timeout), naming the host and showing the
	// unit's last log lines.
	sh(t, l, bad, `printf '[Service]\nType=simple\nExecStart=\nExecStart=/bin/sh -c "echo broken on purpose by the test >&2; sleep 2; exit 1"\nRestartSec=1\n' > /etc/systemd/system/kube-apiserver.service.d/crash.conf && systemctl daemon-reload`)
	t0 := time.Now()
	out, err = cli(t, l, "restore", name, "--snapshot", "latest", "--yes", "--health-timeout", "2m")
	if err == nil {
		t.Fatalf("restore with a crashing kube-apiserver on %s succeeded", bad)
	}
	took := time.Since(t0)
	t.Logf("restore with a crashing apiserver failed after %s", took.Round(100*time.Millisecond))
	requireContains(t, "restore with a crashing apiserver", out, `step "wait for kube-apiserver ready" failed on host `+bad,
		"kube-apiserver cannot start on "+bad, "keeps restarting", "last kube-apiserver log lines", "broken on purpose by the test",
		"--from-step 'wait for kube-apiserver ready'")
	// "cannot start" and "keeps restarting" are the early give-up's words: a
	// wait that ran out the 2 minutes would say it timed out.
	sh(t, l, bad, "rm /etc/systemd/system/kube-apiserver.service.d/crash.conf && systemctl daemon-reload && systemctl restart kube-apiserver")
	if _, err := cli(t, l, "restore", name, "--snapshot", "latest", "--yes", "--from-step", "wait for kube-apiserver ready"); err != nil {
		t.Fatalf("resume from the ready step: %v", err)
	}
	if err := l.Readyz(ctx, bad); err != nil {
		t.Errorf("after the fix: %v", err)
	}
}
