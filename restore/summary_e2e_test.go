package restore_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

// linesBeforeConfirm counts what restore printed before it asks to confirm.
func linesBeforeConfirm(t *testing.T, out string) int {
	t.Helper()
	i := strings.Index(out, "STEP [confirm]")
	if i < 0 {
		t.Fatalf("restore never reached the confirm step:\n%s", out)
	}
	// The step's header line and the question after it count too (the
	// question is one line on a terminal, the refusal one line here).
	return strings.Count(out[:i], "\n") + 2
}

// One lab with 20 workers, and a second cluster dir on it that lists only
// two of them: restore prints the same number of lines before asking for
// both, and the whole plan still reaches --verbose and the run record.
func TestRestoreSummaryDoesNotGrowWithWorkers(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "daytwo-summary", Nodes: 20})
	seedKeys(t, l)
	saveSnapshot(t, l, "seed.db")
	small := l.Opts.Name + "-2w"
	src := filepath.Join(l.Opts.Base, "clusters", l.Opts.Name)
	dst := filepath.Join(l.Opts.Base, "clusters", small)
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying the cluster dir: %v: %s", err, out)
	}
	hosts, err := os.ReadFile(filepath.Join(dst, "hosts"))
	if err != nil {
		t.Fatal(err)
	}
	nodes := l.Nodes()
	for _, n := range nodes[2:] {
		hosts = regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(n.Address)+`\b.*\n`).ReplaceAll(hosts, nil)
	}
	if err := os.WriteFile(filepath.Join(dst, "hosts"), hosts, 0o600); err != nil {
		t.Fatal(err)
	}
	before := allStates(t, l)

	count := map[string]int{}
	for _, cl := range []string{small, l.Opts.Name} {
		// No terminal and no --yes: everything up to the question, then a refusal.
		out, err := cli(t, l, "restore", cl, "--snapshot", "seed.db")
		if err == nil || !strings.Contains(out, "Nothing was changed") {
			t.Fatalf("%s: restore without --yes should refuse at the confirm step: %v", cl, err)
		}
		count[cl] = linesBeforeConfirm(t, out)
		for _, want := range []string{"Members after the restore:", "Steps, in this order:", "16. ",
			"Set aside, never deleted", "/var/lib/etcd/member.before-etcd-restore-", "plan.txt once the run starts"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the summary lacks %q", cl, want)
			}
		}
		// No worker's command is shown before the question.
		if strings.Contains(out, nodes[1].Address+": $ ") {
			t.Errorf("%s: the summary shows a worker's commands", cl)
		}
	}
	t.Logf("lines before the confirmation: %d with 2 workers, %d with 20", count[small], count[l.Opts.Name])
	if count[small] != count[l.Opts.Name] || count[small] > 80 {
		t.Errorf("lines before the confirmation: %d with 2 workers, %d with 20; want the same, at most 80", count[small], count[l.Opts.Name])
	}
	requireUnchanged(t, l, before, "refused restores")

	// --verbose prints the whole plan: every worker's commands.
	out, _ := cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--verbose")
	if !strings.Contains(out, nodes[19].Address+": $ set -e") {
		t.Errorf("restore --verbose lacks the last worker's commands")
	}

	// A restore that runs keeps the whole plan in its record and the recap per host.
	etcdctl(t, l, l.EtcdHosts()[0].Address, "del /registry/pods/default/net-test3")
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", "seed.db", "--yes")
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	requireHealthy(t, l)
	if k := keys(t, l, l.EtcdHosts()[0].Address); !strings.Contains(k, "net-test3") {
		t.Fatalf("net-test3 not back: %s", k)
	}
	recap := out[strings.Index(out, "\nRECAP"):]
	for _, n := range nodes {
		if !strings.Contains(recap, n.Address) {
			t.Errorf("the recap lacks worker %s", n.Address)
		}
	}
	plans, _ := filepath.Glob(filepath.Join(l.Dir.RestoresDir(), "*", "plan.txt"))
	whole := ""
	for _, p := range plans {
		b, _ := os.ReadFile(p)
		whole += string(b)
	}
	for _, n := range nodes {
		if !strings.Contains(whole, fmt.Sprintf("%s: $ set -e", n.Address)) {
			t.Errorf("the run record's plan.txt lacks worker %s's commands", n.Address)
		}
	}
}
