package steps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/etcdhost"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/transport"
)

// hostile values that break any command line built by pasting strings.
var hostile = []string{
	"plain", "with space", "it's", `dq"uote`, "semi;colon", "$(touch PWNED)", "`touch PWNED`",
	"new\nline", "$HOME", "*", "-rf", "a|b&c", "back\\slash",
}

// The restore command runs in a real sh with a stand-in restore tool that
// writes the arguments it got: each must arrive as one argument, unchanged,
// and nothing hidden in a value may run.
func TestRestoreCommandQuotesEveryValue(t *testing.T) {
	for _, v := range hostile {
		t.Run(strings.ReplaceAll(v, "\n", `\n`), func(t *testing.T) {
			dir := t.TempDir()
			argsFile := filepath.Join(dir, "args")
			tool := filepath.Join(dir, "etcdutl")
			// Like the real tool, it creates the --data-dir it is given.
			script := "#!/bin/sh\nprev=\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; [ \"$prev\" = --data-dir ] && mkdir -p -- \"$a\"; prev=$a; done > " + transport.Quote(argsFile) + "\n"
			if err := os.WriteFile(tool, []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			host := &inventory.Host{Name: "h1"}
			m := inventory.EtcdMember{Host: host, Name: "etcd " + v, PeerURL: "https://h1:2380/" + v}
			dataDir := filepath.Join(dir, "data "+v)
			r := &Restore{Members: []inventory.EtcdMember{m}, Token: "tok", Snapshot: SnapshotRef{HasTrailer: true}}
			env := &orchestrator.Env{}
			r.Host("h1").Etcd = &etcdhost.EtcdFacts{Etcdutl: tool, EtcdutlVersion: "3.6.0",
				Config: &etcdhost.EtcdConfig{DataDir: dataDir, WalDir: dataDir + "-wal", User: "root"}}
			sp, err := (&EtcdRestore{r}).Plan(context.Background(), env, &orchestrator.Step{}, []*inventory.Host{host})
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sh", "-c", sp.Tasks[0].Ops[0].Cmd)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
				t.Fatal("a value ran as a command")
			}
			raw, err := os.ReadFile(argsFile)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
			want := []string{"snapshot", "restore", dataDir + "/.ezrestore/tok/snapshot.db",
				"--name", m.Name, "--initial-cluster", m.Name + "=" + m.PeerURL,
				"--initial-cluster-token", "tok", "--initial-advertise-peer-urls", m.PeerURL,
				"--data-dir", dataDir + "/.ezrestore/tok/data", "--wal-dir", dataDir + "-wal.ezrestore-tok"}
			if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("arguments changed on the way:\n got %q\nwant %q", got, want)
			}
		})
	}
}
