package restore_test

// Faults an operator meets in an emergency, caused for real on the lab. Each
// ends with nothing lost (the old data set aside, the snapshot's keys back
// after the advised next command) and a message that names the host, the
// step and the next command.

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// errorBlock is what the command printed after "ezrestore: ", its error.
func errorBlock(out string) string {
	if i := strings.LastIndex(out, "\nezrestore: "); i >= 0 {
		return out[i+1:]
	}
	return out
}

func requireAll(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

// setAside counts the member.before-* dirs on a host.
func setAside(t *testing.T, l *lab.Lab, addr string) int {
	return len(strings.Fields(sh(t, l, addr, "ls -d /var/lib/etcd/member.before-* 2>/dev/null || true")))
}

func TestFaults(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "e2e-faults", Nodes: 1})
	ctx := context.Background()
	etcd := l.EtcdHosts()
	seedKeys(t, l)
	snap := saveSnapshot(t, l, "faults.db")

	t.Run("etcd cannot start on one member: fail fast, short report, resume", func(t *testing.T) {
		bad := etcd[2].Address
		// A drop-in the operator forgot: the unit cannot start at all.
		sh(t, l, bad, "mkdir -p /etc/systemd/system/etcd.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' > /etc/systemd/system/etcd.service.d/zz-broken.conf && systemctl daemon-reload")
		t0 := time.Now()
		out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", snap, "--yes", "--health-timeout", "120s")
		took := time.Since(t0)
		if err == nil {
			t.Fatal("restore succeeded with a member that cannot start")
		}
		// "cannot start" below is the early give-up's own message: a wait
		// that ran out the 120 s would say it timed out instead.
		msg := errorBlock(out)
		requireAll(t, "the failure", msg,
			`step "wait for etcd health" failed`, "etcd cannot start on "+bad, "last etcd log lines",
			"put back:", "Where the cluster stands", "kube-apiserver", "--from-step 'wait for etcd health'",
			"ezrestore rollback "+l.Opts.Name)
		if n := strings.Count(msg, "\n") + 1; n > 60 {
			t.Errorf("the failure report runs to %d lines for three members (aim: under 60)", n)
		}
		if c := strings.Count(msg, "put back:"); c != len(etcd) {
			t.Errorf("put-back commands printed %d times for %d hosts", c, len(etcd))
		}
		t.Logf("failed after %v with a %d-line report", took.Round(time.Millisecond), strings.Count(msg, "\n")+1)
		for _, h := range etcd {
			if setAside(t, l, h.Address) != 1 {
				t.Errorf("%s: the old data is not set aside", h.Address)
			}
		}
		// The operator fixes the unit and takes the advised next command.
		sh(t, l, bad, "rm /etc/systemd/system/etcd.service.d/zz-broken.conf && systemctl daemon-reload")
		if out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", snap, "--yes", "--from-step", "start etcd"); err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		requireHealthy(t, l)
		for _, h := range etcd {
			if k := keys(t, l, h.Address); !strings.Contains(k, "net-test3") {
				t.Fatalf("%s lacks the snapshot's keys after the resume: %s", h.Address, k)
			}
		}
	})

	t.Run("a host reboots mid-run; the resumed run stops its etcd before the swap", func(t *testing.T) {
		victim := etcd[1].Address
		// The restore tool fails on one host (a wrapper refuses `snapshot
		// restore`; everything else, its version and --help included, goes
		// to the real binary), after the push and the stops went through.
		const wrap = `for t in etcdutl etcdctl; do b=/opt/kube/bin/$t; [ -x "$b" ] || continue; mv "$b" "$b.real"
printf '#!/bin/sh\ncase " $* " in *" snapshot restore "*) case " $* " in *" --help "*) ;; *) echo "injected: the restore tool fails here" >&2; exit 1 ;; esac ;; esac\nexec %s.real "$@"\n' "$b" > "$b"; chmod 755 "$b"; done`
		sh(t, l, victim, wrap)
		out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", snap, "--yes")
		sh(t, l, victim, `for t in etcdutl etcdctl; do b=/opt/kube/bin/$t; [ -x "$b.real" ] && mv -f "$b.real" "$b"; done; true`)
		if err == nil {
			t.Fatal("restore succeeded with a failing restore tool")
		}
		requireAll(t, "the failure", errorBlock(out), `step "restore snapshot" failed on host `+victim, "injected: the restore tool fails here",
			"The old etcd data is still in place", "--from-step 'restore snapshot'", "etcd on")
		// Power loss and reboot: the enabled etcd unit starts on the old data.
		if err := l.Kill(ctx, victim); err != nil {
			t.Fatal(err)
		}
		if err := l.Start(ctx, victim); err != nil {
			t.Fatal(err)
		}
		state := sh(t, l, victim, "systemctl show -p ActiveState etcd.service")
		if state == "ActiveState=inactive" || state == "ActiveState=failed" {
			t.Fatalf("after the reboot etcd should be running on the old data: %s", state)
		}
		before := setAside(t, l, victim)
		// The advised resume starts after the stops: the swap itself finds
		// etcd running again, stops it and says so.
		out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", snap, "--yes", "--from-step", "restore snapshot")
		if err != nil {
			t.Fatalf("the advised resume failed: %v", err)
		}
		if !regexp.MustCompile(`changed: \[` + regexp.QuoteMeta(victim) + `\].*etcd was running again`).MatchString(out) {
			t.Errorf("the swap on %s should say it stopped the etcd that came back", victim)
		}
		requireHealthy(t, l)
		if got := setAside(t, l, victim); got != before+1 {
			t.Errorf("%s: %d set-aside dirs, want %d: the data etcd ran on must be set aside, not lost", victim, got, before+1)
		}
		for _, h := range etcd {
			if k := keys(t, l, h.Address); !strings.Contains(k, "net-test3") {
				t.Fatalf("%s lacks the snapshot's keys: %s", h.Address, k)
			}
		}
	})

	t.Run("a small disk under the staging dir: refused with the numbers", func(t *testing.T) {
		small := etcd[0].Address
		sh(t, l, small, "mkdir -p /var/lib/etcd/.ezrestore")
		before := allStates(t, l)
		sh(t, l, small, "mount -t tmpfs -o size=1m tmpfs /var/lib/etcd/.ezrestore")
		out, err := cli(t, l, "plan", l.Opts.Name, "--snapshot", snap)
		sh(t, l, small, "umount /var/lib/etcd/.ezrestore")
		if err == nil {
			t.Fatal("plan went on with a 1 MB staging filesystem")
		}
		requireAll(t, "the refusal", errorBlock(out), "host "+small, "/var/lib/etcd/.ezrestore", "new WAL segment 64.0 MiB", "free", "Nothing was changed on any host")
		requireUnchanged(t, l, before, "a refused plan")
		row(t, "small disk under the staging dir", err, out, "unchanged")

		requireHealthy(t, l)
	})

	t.Run("a worker's kubelet cannot be stopped: the background step stops the run before the apiservers", func(t *testing.T) {
		worker := l.Nodes()[0].Address
		// A drop-in that refuses `systemctl stop` (as a host hardened
		// against manual stops has): the background stop fails there.
		dropIn := "/etc/systemd/system/kubelet.service.d/zz-refuse.conf"
		sh(t, l, worker, "mkdir -p /etc/systemd/system/kubelet.service.d && printf '[Unit]\\nRefuseManualStop=yes\\n' > "+dropIn+" && systemctl daemon-reload")
		defer sh(t, l, worker, "rm -f "+dropIn+" && systemctl daemon-reload && systemctl start kubelet kube-proxy")
		apiBefore := monotonic(t, l, l.Masters()[0].Address, "kube-apiserver", "ActiveEnterTimestampMonotonic")
		out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", snap, "--yes")
		if err == nil {
			t.Fatal("restore succeeded with a kubelet that refuses to stop")
		}
		msg := errorBlock(out)
		requireAll(t, "the failure", msg, `step "stop kubelet and kube-proxy" failed on host `+worker,
			`ran in the background and failed`, "Do by hand what it could not on "+worker, "plan.txt", "--from-step 'start kube masters'", "Where the cluster stands",
			"put back:", "ezrestore rollback "+l.Opts.Name)
		// The etcd steps ran beside it; the apiservers did not come back
		// while a kubelet might still act on the old state.
		requireHealthy(t, l)
		if s := sh(t, l, l.Masters()[0].Address, "systemctl is-active kube-apiserver || true"); s != "inactive" {
			t.Errorf("kube-apiserver is %q after the run stopped before \"start kube masters\"", s)
		}
		if !strings.Contains(out, "STEP [stop kubelet and kube-proxy] finished in the background") {
			t.Errorf("the output does not show the background step finishing:\n%s", out)
		}
		// The operator does by hand what the step could not, and goes on.
		sh(t, l, worker, "rm -f "+dropIn+" && systemctl daemon-reload && systemctl stop kubelet kube-proxy")
		if out, err := cli(t, l, "restore", l.Opts.Name, "--snapshot", snap, "--yes", "--from-step", "start kube masters"); err != nil {
			t.Fatalf("the advised resume failed: %v\n%s", err, out)
		}
		requireHealthy(t, l)
		if after := monotonic(t, l, l.Masters()[0].Address, "kube-apiserver", "ActiveEnterTimestampMonotonic"); after == apiBefore {
			t.Errorf("kube-apiserver was not restarted by the resumed run")
		}
		for _, h := range append(l.Masters(), l.Nodes()...) {
			if s := sh(t, l, h.Address, "systemctl is-active kubelet kube-proxy"); s != "active\nactive" {
				t.Errorf("%s: kubelet/kube-proxy after the resume: %s", h.Address, s)
			}
		}
		for _, h := range etcd {
			if k := keys(t, l, h.Address); !strings.Contains(k, "net-test3") {
				t.Fatalf("%s lacks the snapshot's keys: %s", h.Address, k)
			}
		}
		row(t, "a worker's kubelet refuses to stop (background step)", err, out, "healthy after stopping it by hand and --from-step 'start kube masters'")
	})
}
