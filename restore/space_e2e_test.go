package restore_test

// End-to-end tests of the space account (status, plan), prune, the staged
// copies' clean-up and etcd's own space, on the lab. The lab's own ssh and
// etcdctl judge what is on the hosts.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// duKiB is what the lab measures under a glob on a host, in KiB (0 for none).
func duKiB(t *testing.T, l *lab.Lab, addr, glob string) int64 {
	t.Helper()
	out := sh(t, l, addr, "du -sck "+glob+" 2>/dev/null | tail -n 1 | cut -f1 || true")
	n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	return n
}

func count(t *testing.T, l *lab.Lab, addr, glob string) int {
	t.Helper()
	n, err := strconv.Atoi(sh(t, l, addr, "ls -d "+glob+" 2>/dev/null | wc -l"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSpacePruneAndCleanup(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "sp-prune", Nodes: -1})
	name := l.Opts.Name
	seedKeys(t, l)
	saveSnapshot(t, l, "s.db")
	etcd := l.EtcdHosts()

	// A run that fails after its push keeps its staged copies and says where.
	pb := filepath.Join(t.TempDir(), "fails.yml")
	if err := os.WriteFile(pb, []byte(`name: fails after the push
steps:
  - {name: preflight, action: preflight, hosts: [etcd]}
  - {name: confirm, action: confirm}
  - {name: stop etcd, action: systemd, hosts: [etcd], params: {state: stopped, units: [etcd]}}
  - {name: push snapshot, action: push-snapshot, hosts: [etcd]}
  - {name: wait for etcd health, action: etcd-health, hosts: [etcd]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, l, "restore", name, "--snapshot", "s.db", "--yes", "--playbook", pb, "--health-timeout", "2s")
	if err == nil {
		t.Fatal("a restore with etcd stopped at the health step succeeded")
	}
	failedTok := regexp.MustCompile(`\.ezrestore/(etcd-restore-[0-9TZ]+)`).FindStringSubmatch(out)
	if failedTok == nil || !strings.Contains(out, "The staged copies are kept") {
		t.Fatalf("the failure does not say where the staged copies are")
	}
	for _, h := range etcd {
		if !strings.Contains(out, h.Address+": /var/lib/etcd/.ezrestore/"+failedTok[1]) {
			t.Errorf("failure message lacks %s's staging dir", h.Address)
		}
		sh(t, l, h.Address, "test -s /var/lib/etcd/.ezrestore/"+failedTok[1]+"/snapshot.db")
		sh(t, l, h.Address, "systemctl start --no-block etcd")
	}
	waitHealthy(t, l)

	// Five healthy restores; none leaves its staging behind.
	var tokens []string
	for i := 0; i < 5; i++ {
		out, err := cli(t, l, "restore", name, "--snapshot", "s.db", "--yes")
		if err != nil {
			t.Fatalf("restore %d: %v", i+1, err)
		}
		m := regexp.MustCompile(`with token (\S+)\.`).FindStringSubmatch(out)
		if m == nil {
			t.Fatal("no token in the restore's output")
		}
		tokens = append(tokens, m[1])
		for _, h := range etcd {
			if n := count(t, l, h.Address, "/var/lib/etcd/.ezrestore/"+m[1]); n != 0 {
				t.Fatalf("restore %d left its staging on %s", i+1, h.Address)
			}
		}
		time.Sleep(1100 * time.Millisecond) // tokens and run ids are per second
	}
	requireHealthy(t, l)

	// status accounts for the set-aside space per host, per run.
	before := map[string]int64{}
	for _, h := range etcd {
		if n := count(t, l, h.Address, "/var/lib/etcd/member.before-*"); n != 5 {
			t.Fatalf("%s: %d set-aside member dirs, want 5", h.Address, n)
		}
		before[h.Address] = duKiB(t, l, h.Address, "/var/lib/etcd/member.before-*")
	}
	st, err := cli(t, l, "status", name, "-o", "json")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var rep struct {
		Space []struct {
			Host      string `json:"host"`
			Leftovers []struct {
				Kind  string `json:"kind"`
				Path  string `json:"path"`
				Bytes int64  `json:"bytes"`
			} `json:"leftovers"`
			Filesystems []struct {
				Role string `json:"role"`
				Free int64  `json:"free_bytes"`
			} `json:"filesystems"`
			Runs []struct {
				Token string   `json:"token"`
				IDs   []string `json:"run_ids"`
				State string   `json:"state"`
			} `json:"runs"`
		} `json:"space"`
	}
	if err := json.Unmarshal([]byte(st[strings.Index(st, "{"):]), &rep); err != nil {
		t.Fatalf("status -o json: %v", err)
	}
	if len(rep.Space) != len(etcd) {
		t.Fatalf("status measured %d hosts, want %d", len(rep.Space), len(etcd))
	}
	for _, hs := range rep.Space {
		var asideKiB int64
		asides := 0
		for _, lo := range hs.Leftovers {
			if lo.Kind == "set-aside member" {
				asides++
				asideKiB += lo.Bytes / 1024
			}
		}
		if asides != 5 || asideKiB != before[hs.Host] {
			t.Errorf("%s: status shows %d set-aside dirs of %d KiB; the lab measures 5 of %d KiB", hs.Host, asides, asideKiB, before[hs.Host])
		}
		if len(hs.Filesystems) < 2 || hs.Filesystems[0].Free <= 0 {
			t.Errorf("%s: free space not measured: %+v", hs.Host, hs.Filesystems)
		}
		states := map[string]string{}
		for _, r := range hs.Runs {
			states[r.Token] = r.State
			if len(r.IDs) == 0 {
				t.Errorf("%s: run %s has no run id", hs.Host, r.Token)
			}
		}
		if states[failedTok[1]] != "did not end healthy" || states[tokens[0]] != "ended healthy" {
			t.Errorf("%s: run states %v", hs.Host, states)
		}
	}
	st, _ = cli(t, l, "status", name)
	if !strings.Contains(st, "earlier runs hold") || !strings.Contains(st, "member.before-"+tokens[4]) {
		t.Errorf("status text lacks the space account")
	}
	// plan shows the same account, read-only.
	if out, err := cli(t, l, "plan", name, "--snapshot", "s.db"); err != nil || !strings.Contains(out, "earlier runs hold") {
		t.Errorf("plan lacks the space account: %v", err)
	}

	// Without a terminal and without --yes, prune removes nothing.
	if out, err := cli(t, l, "prune", name); err == nil || !strings.Contains(out, "nothing was removed") {
		t.Fatalf("prune without --yes should refuse: %v", err)
	}
	if n := count(t, l, etcd[0].Address, "/var/lib/etcd/member.before-*"); n != 5 {
		t.Fatalf("a refused prune removed something: %d left", n)
	}

	out, err = cli(t, l, "prune", name, "--keep", "1", "--yes")
	if err != nil || !strings.Contains(out, "Freed ") || strings.Count(out, ": removed /var/lib/etcd/member.before-") != 4*len(etcd) {
		t.Fatalf("prune --keep 1 should remove 4 runs' dirs on each host and say what it freed: %v", err)
	}
	for _, h := range etcd {
		left := sh(t, l, h.Address, "ls -d /var/lib/etcd/member.before-*")
		if left != "/var/lib/etcd/member.before-"+tokens[4] {
			t.Errorf("%s: after prune --keep 1: %q, want only the newest run's", h.Address, left)
		}
		after := duKiB(t, l, h.Address, "/var/lib/etcd/member.before-*")
		t.Logf("%s: set-aside %d KiB before prune, %d KiB after", h.Address, before[h.Address], after)
		if after*4 > before[h.Address] {
			t.Errorf("%s: prune freed too little: %d KiB -> %d KiB", h.Address, before[h.Address], after)
		}
		// The failed run (not healthy) keeps its staging.
		sh(t, l, h.Address, "test -d /var/lib/etcd/.ezrestore/"+failedTok[1])
		sh(t, l, h.Address, "test -d /var/lib/etcd/member")
	}
	requireHealthy(t, l)
	if k := keys(t, l, etcd[1].Address); !strings.Contains(k, "net-test3") {
		t.Fatalf("keys after prune: %s", k)
	}
	recs, _ := filepath.Glob(filepath.Join(l.Dir.Path, "prunes", "*.json"))
	if len(recs) != 1 {
		t.Fatalf("prune records: %v", recs)
	}
	if fi, err := os.Stat(recs[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("prune record mode: %v", err)
	}
	if b, _ := os.ReadFile(recs[0]); !strings.Contains(string(b), "member.before-"+tokens[0]) {
		t.Fatalf("prune record lacks what it removed")
	}

	// Named with --run, the failed run's staging goes too.
	if _, err := cli(t, l, "prune", name, "--run", failedTok[1], "--yes"); err != nil {
		t.Fatalf("prune --run: %v", err)
	}
	for _, h := range etcd {
		if n := count(t, l, h.Address, "/var/lib/etcd/.ezrestore/*"); n != 0 {
			t.Errorf("%s: staging left after prune --run", h.Address)
		}
		if n := count(t, l, h.Address, "/var/lib/etcd/member.before-*"); n != 1 {
			t.Errorf("%s: prune --run of another run touched set-aside data", h.Address)
		}
	}
	requireHealthy(t, l)

	// etcd's own space: a small quota on every member, writes until etcd
	// raises NOSPACE; status shows it with the fix, and the fix works.
	const quota = 16 << 20
	for _, h := range etcd {
		sh(t, l, h.Address, "f=$(systemctl show -p FragmentPath --value etcd) && sed -i 's/--quota-backend-bytes=[0-9]*/--quota-backend-bytes="+strconv.Itoa(quota)+"/' \"$f\" && systemctl daemon-reload && systemctl restart --no-block etcd")
	}
	waitHealthy(t, l)
	a := etcd[0].Address
	put := l.EtcdctlCmd(a)
	nospace := sh(t, l, a, "head -c 1000000 /dev/urandom | base64 -w0 > /root/v; for i in $(seq 1 40); do "+put+" put /big/$i < /root/v >/dev/null 2>/root/err || break; done; cat /root/err")
	if !strings.Contains(nospace, "database space exceeded") {
		t.Fatalf("etcd did not refuse writes past its quota: %s", nospace)
	}
	st, err = cli(t, l, "status", name)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if !strings.Contains(st, "ALARM NOSPACE raised by") || !strings.Contains(st, "alarm disarm") || !strings.Contains(st, "defrag") || !strings.Contains(st, "16.0 MiB (ExecStart --quota-backend-bytes)") {
		t.Fatalf("status does not show the NOSPACE alarm with its fix")
	}
	// The operator deletes what is not needed, then runs the printed commands.
	sh(t, l, a, put+" del --prefix /big")
	fixRE := regexp.MustCompile(`(?m)^    (127\.[0-9.]+): (.*ETCDCTL_API=3 .*)$`)
	fixes := fixRE.FindAllStringSubmatch(st, -1)
	if len(fixes) < len(etcd)+2 {
		t.Fatalf("want compact, a defrag per member and disarm; found %d commands", len(fixes))
	}
	for _, f := range fixes {
		sh(t, l, f[1], f[2])
	}
	st, err = cli(t, l, "status", name)
	if err != nil || strings.Contains(st, "ALARM NOSPACE") || !strings.Contains(st, "no alarm") {
		t.Fatalf("after the printed fix, status still reports trouble: %v", err)
	}
	sh(t, l, a, put+" put /after-fix ok")
	requireHealthy(t, l)
}

// waitHealthy waits up to a minute for the lab's own health check to pass.
func waitHealthy(t *testing.T, l *lab.Lab) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		h := l.EtcdHealth(t.Context())
		if h.Healthy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not healthy after a minute:\n%s", h)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
