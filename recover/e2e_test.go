package recover_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/lab"
)

var binary string

func TestMain(m *testing.M) {
	binary = os.Getenv("EZRESTORE_BIN")
	if binary == "" && os.Getenv("EZRESTORE_E2E") == "1" {
		dir, err := os.MkdirTemp("", "ezrestore-bin")
		if err != nil {
			panic(err)
		}
		binary = filepath.Join(dir, "ezrestore")
		out, err := exec.Command("go", "build", "-o", binary, "../cmd/ezrestore").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building ezrestore: %v\n%s", err, out)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
	}
	os.Exit(m.Run())
}

// cli runs the binary against the lab's base dir, with no terminal.
func cli(t *testing.T, l *lab.Lab, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--base", l.Opts.Base}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("$ ezrestore %s\n%s", strings.Join(args, " "), out)
	return string(out), err
}

func requireContains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q", what, w)
		}
	}
}

// meta is what kubectl says of an object: the judge is the real apiserver.
type meta struct {
	Metadata struct {
		Name   string            `json:"name"`
		UID    string            `json:"uid"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
}

// watcher is `kubectl get namespaces --watch-only`, started before the
// recover: what a controller watching namespaces sees.
type watcher struct {
	mu     sync.Mutex
	events []string // "TYPE name uid"
	cancel context.CancelFunc
	done   chan struct{}
}

func watchNamespaces(t *testing.T, l *lab.Lab) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, l.KubectlPath(), "--kubeconfig="+l.KubeconfigPath(), "get", "namespaces",
		"--watch-only", "--output-watch-events", "-o", "json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		dec := json.NewDecoder(bufio.NewReader(out))
		for {
			var ev struct {
				Type   string `json:"type"`
				Object meta   `json:"object"`
			}
			if dec.Decode(&ev) != nil {
				break
			}
			w.mu.Lock()
			w.events = append(w.events, ev.Type+" "+ev.Object.Metadata.Name+" "+ev.Object.Metadata.UID)
			w.mu.Unlock()
		}
		cmd.Wait()
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

func (w *watcher) saw(event string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e == event {
			return true
		}
	}
	return false
}

// TestRecover is issue 20's second story on the real control plane (etcd
// 3.6, kube-apiserver v1.34 with Secrets encrypted at rest): a namespace
// with a deployment, a configmap and a secret is deleted after a backup, an
// object made after the backup stays as it is, and recover --namespace
// brings the namespace back with the original uids and labels, seen ADDED
// by a watch opened before. Then the refusals: an object that exists
// (without --replace), no terminal and no --yes, a Secret whose key the
// masters no longer hold (recover, and a full restore's preflight).
func TestRecover(t *testing.T) {
	l := labtest.Up(t, lab.Options{Name: "recover-e2e", Kube: lab.KubeReal, Nodes: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	name := l.Opts.Name
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := l.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	get := func(args ...string) meta {
		t.Helper()
		var m meta
		if err := json.Unmarshal([]byte(kubectl(append([]string{"get", "-o", "json"}, args...)...)), &m); err != nil {
			t.Fatalf("kubectl get %v: %v", args, err)
		}
		return m
	}

	kubectl("create", "namespace", "team-a")
	kubectl("-n", "team-a", "create", "deployment", "web", "--image=busybox")
	kubectl("-n", "team-a", "create", "configmap", "cfg", "--from-literal=colour=blue")
	kubectl("-n", "team-a", "label", "configmap", "cfg", "tier=gold")
	kubectl("-n", "team-a", "create", "secret", "generic", "db", "--from-literal=password=hunter2")
	// The deployment controller makes the ReplicaSet; it must be in the backup.
	var rsName string
	for deadline := time.Now().Add(time.Minute); rsName == "" && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		rsName = kubectl("-n", "team-a", "get", "rs", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}")
	}
	if rsName == "" {
		t.Fatal("no ReplicaSet for deployment team-a/web within a minute")
	}
	// The secret is encrypted at rest in etcd: what the test recovers is the real thing.
	if v := etcdGet(t, l, "/registry/secrets/team-a/db"); !strings.HasPrefix(v, "k8s:enc:aescbc:v1:"+lab.EncryptionKeyName+":") {
		t.Fatalf("secret team-a/db is not stored aescbc-encrypted with %s: %.40q", lab.EncryptionKeyName, v)
	}
	before := map[string]meta{}
	for _, o := range []string{"namespace/team-a", "deployment/web", "replicaset/" + rsName, "configmap/cfg", "secret/db"} {
		before[o] = get("-n", "team-a", o)
	}
	if out, err := cli(t, l, "backup", name); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}

	// After the backup: an object the full restore would undo, and the loss.
	kubectl("run", "net-test4", "--image=busybox")
	net4 := get("pod/net-test4")
	kubectl("delete", "namespace", "team-a", "--wait=true", "--timeout=120s")
	if _, err := l.Kubectl(ctx, "get", "namespace", "team-a"); err == nil {
		t.Fatal("namespace team-a still there after delete --wait")
	}
	w := watchNamespaces(t, l)

	t.Run("dry run plans and changes nothing", func(t *testing.T) {
		out, err := cli(t, l, "recover", name, "--snapshot", "latest", "--namespace", "team-a", "--dry-run")
		if err != nil {
			t.Fatalf("recover --dry-run: %v", err)
		}
		requireContains(t, "dry run", out,
			"create  namespaces//team-a  /registry/namespaces/team-a  uid "+before["namespace/team-a"].Metadata.UID,
			"create  deployments.apps/team-a/web  /registry/deployments/team-a/web",
			"create  replicasets.apps/team-a/"+rsName,
			"create  secrets/team-a/db  /registry/secrets/team-a/db  uid "+before["secret/db"].Metadata.UID+"  [encrypted: aescbc key "+lab.EncryptionKeyName+"]",
			"create  configmaps/team-a/cfg")
		out, err = cli(t, l, "recover", name, "--snapshot", "latest", "configmap/team-a/cfg", "--dry-run")
		if err != nil {
			t.Fatalf("recover --dry-run of one object: %v", err)
		}
		requireContains(t, "object without its namespace", out, "Warning: namespace team-a does not exist now and is not recovered")
		// The plan as data, for scripts (progress lines go to stderr).
		cmd := exec.CommandContext(ctx, binary, "--base", l.Opts.Base, "recover", name, "--snapshot", "latest", "--namespace", "team-a", "--dry-run", "-o", "json")
		data, err := cmd.Output()
		if err != nil {
			t.Fatalf("recover --dry-run -o json: %v", err)
		}
		var plan struct {
			Objects []struct {
				Object, Key, UID, Action string
			} `json:"objects"`
		}
		if err := json.Unmarshal(data, &plan); err != nil {
			t.Fatalf("recover --dry-run -o json: %v\n%s", err, data)
		}
		if len(plan.Objects) == 0 || plan.Objects[0].Key != "/registry/namespaces/team-a" || plan.Objects[0].Action != "create" || plan.Objects[0].UID != before["namespace/team-a"].Metadata.UID {
			t.Errorf("the plan as JSON does not start with the namespace to create: %+v", plan.Objects)
		}
		if _, err := l.Kubectl(ctx, "get", "namespace", "team-a"); err == nil {
			t.Fatal("namespace team-a is back after a dry run")
		}
	})

	t.Run("bad input is a clear error", func(t *testing.T) {
		notEtcd := filepath.Join(t.TempDir(), "notes.db")
		if err := os.WriteFile(notEtcd, []byte("not a database\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--snapshot", "latest", "configmap/team-a/nope"}, "does not hold configmap/team-a/nope (key /registry/configmaps/team-a/nope)"},
			{[]string{"--snapshot", "latest", "frobnicator/team-a/x"}, `unknown resource "frobnicator"`},
			{[]string{"--snapshot", "latest", "configmap/cfg"}, "configmaps are namespaced: write configmap/NAMESPACE/cfg"},
			{[]string{"--snapshot", notEtcd, "--namespace", "team-a"}, "snapshot " + notEtcd + " is not a readable etcd snapshot"},
		} {
			out, err := cli(t, l, append([]string{"recover", name, "--dry-run"}, c.args...)...)
			if err == nil {
				t.Errorf("recover %v: no error", c.args)
			}
			requireContains(t, fmt.Sprint(c.args), out, c.want)
		}
	})

	t.Run("no terminal and no --yes refuses", func(t *testing.T) {
		out, err := cli(t, l, "recover", name, "--snapshot", "latest", "--namespace", "team-a")
		if err == nil {
			t.Fatal("recover without a terminal and without --yes succeeded")
		}
		requireContains(t, "no --yes", out, "no terminal to ask on", "nothing was written")
		if _, err := l.Kubectl(ctx, "get", "namespace", "team-a"); err == nil {
			t.Fatal("namespace team-a is back after a refused recover")
		}
	})

	t.Run("a deleted namespace comes back as it was", func(t *testing.T) {
		out, err := cli(t, l, "recover", name, "--snapshot", "latest", "--namespace", "team-a", "--yes")
		if err != nil {
			t.Fatalf("recover: %v", err)
		}
		requireContains(t, "recover", out, "objects are back in cluster "+name, "Run record: ")
		for o, was := range before {
			now := get("-n", "team-a", o)
			if now.Metadata.UID != was.Metadata.UID {
				t.Errorf("%s: uid %s after recover, %s before", o, now.Metadata.UID, was.Metadata.UID)
			}
			for k, v := range was.Metadata.Labels {
				if now.Metadata.Labels[k] != v {
					t.Errorf("%s: label %s=%q after recover, %q before", o, k, now.Metadata.Labels[k], v)
				}
			}
		}
		if pw, _ := base64.StdEncoding.DecodeString(get("-n", "team-a", "secret/db").Data["password"]); string(pw) != "hunter2" {
			t.Errorf("secret team-a/db reads %q through the API", pw)
		}
		if get("-n", "team-a", "configmap/cfg").Data["colour"] != "blue" {
			t.Error("configmap team-a/cfg lost its data")
		}
		if now := get("pod/net-test4"); now.Metadata.UID != net4.Metadata.UID {
			t.Errorf("net-test4, made after the backup, changed: uid %s, was %s", now.Metadata.UID, net4.Metadata.UID)
		}
		added := "ADDED team-a " + before["namespace/team-a"].Metadata.UID
		for deadline := time.Now().Add(30 * time.Second); !w.saw(added) && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
		}
		if !w.saw(added) {
			t.Errorf("the watch opened before the recover did not see %q: %v", added, w.events)
		}
		w.stop() // a watch held open slows every apiserver restart below by a minute
		recs, _ := filepath.Glob(filepath.Join(l.Dir.Path, "recovers", "*", "plan.txt"))
		if len(recs) != 1 {
			t.Errorf("run records with a plan: %v; want one", recs)
		}
	})

	t.Run("an object that exists is refused without --replace", func(t *testing.T) {
		out, err := cli(t, l, "recover", name, "--snapshot", "latest", "configmap/team-a/cfg", "--yes")
		if err == nil {
			t.Fatal("recover of an existing object succeeded without --replace")
		}
		requireContains(t, "existing", out, "Refused: configmaps/team-a/cfg exists now", "nothing was written")

		kubectl("-n", "team-a", "label", "configmap", "cfg", "tier=silver", "--overwrite")
		out, err = cli(t, l, "recover", name, "--snapshot", "latest", "configmap/team-a/cfg", "--replace", "--yes")
		if err != nil {
			t.Fatalf("recover --replace: %v", err)
		}
		requireContains(t, "replace", out, "replace configmaps/team-a/cfg", "--- live", "+++ snapshot", "-    tier: silver", "+    tier: gold")
		if got := get("-n", "team-a", "configmap/cfg").Metadata.Labels["tier"]; got != "gold" {
			t.Errorf("after --replace, tier=%s", got)
		}
	})

	t.Run("an owner that is gone is warned about", func(t *testing.T) {
		kubectl("-n", "team-a", "delete", "deployment", "web", "--wait=true", "--timeout=60s")
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if _, err := l.Kubectl(ctx, "-n", "team-a", "get", "rs", rsName); err != nil {
				break // the garbage collector took it
			}
		}
		out, err := cli(t, l, "recover", name, "--snapshot", "latest", "replicaset/team-a/"+rsName, "--dry-run")
		if err != nil {
			t.Fatalf("recover --dry-run of the ReplicaSet: %v", err)
		}
		requireContains(t, "owner", out, "Warning: replicasets.apps/team-a/"+rsName+": its owner Deployment web (uid "+before["deployment/web"].Metadata.UID+") is gone")
	})

	t.Run("a key the masters no longer hold is refused", func(t *testing.T) {
		// While every master holds the key, the full restore's preflight says so.
		out, err := cli(t, l, "plan", name, "--snapshot", "latest")
		if err != nil {
			t.Fatalf("plan with every key held: %v", err)
		}
		for _, m := range l.Masters() {
			requireContains(t, "plan, keys held", out, m.Address+": ok: encryption at rest: "+lab.EncryptionConfigPath+
				" holds the keys of the snapshot's 1 secrets with aescbc "+lab.EncryptionKeyName)
		}
		// Deleted while the apiservers can still read it: after the
		// rotation they cannot list a Secret encrypted with the old key.
		kubectl("-n", "team-a", "delete", "secret", "db")
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		cfg := base64.StdEncoding.EncodeToString(lab.EncryptionConfig("lab-key-2", secret))
		// All masters at once, and killed, not stopped: an apiserver drains
		// the controllers' watches for a minute before it stops, and what
		// is tested is the configuration it starts with.
		var wg sync.WaitGroup
		errs := make([]error, len(l.Masters()))
		for i, m := range l.Masters() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = l.Exec(ctx, m.Address, fmt.Sprintf("echo %s | base64 -d > %s && systemctl kill --signal=SIGKILL kube-apiserver; systemctl restart kube-apiserver", cfg, lab.EncryptionConfigPath))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("rotating the key on %s: %v", l.Masters()[i].Address, err)
			}
		}
		for _, m := range l.Masters() {
			var err error
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
				if err = l.Readyz(ctx, m.Address); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("apiserver on %s not ready after the rotation: %v", m.Address, err)
			}
		}
		out, err = cli(t, l, "recover", name, "--snapshot", "latest", "secret/team-a/db", "--yes")
		if err == nil {
			t.Fatal("recover of a secret whose key is gone succeeded")
		}
		want := `1 secrets encrypted with aescbc key "` + lab.EncryptionKeyName + `"`
		requireContains(t, "recover, key gone", out, "recover writes back "+want, "has aescbc lab-key-2 for secrets, not aescbc "+lab.EncryptionKeyName, "nothing was written")
		for _, m := range l.Masters() {
			requireContains(t, "recover, key gone", out, "master "+m.Address+": "+lab.EncryptionConfigPath)
		}
		if _, err := l.Kubectl(ctx, "-n", "team-a", "get", "secret", "db"); err == nil {
			t.Error("secret team-a/db is back although refused")
		}
		out, err = cli(t, l, "plan", name, "--snapshot", "latest")
		if err == nil {
			t.Fatal("the full restore's plan passed preflight with a key gone")
		}
		requireContains(t, "restore preflight, key gone", out, "the snapshot holds "+want, "Nothing was changed on any host.")
	})
}

// etcdGet is the value of key as the first member's etcdctl reads it.
func etcdGet(t *testing.T, l *lab.Lab, key string) string {
	t.Helper()
	a := l.EtcdHosts()[0].Address
	out, err := l.Exec(context.Background(), a, lab.EtcdctlCmd(a)+" get --print-value-only "+key)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
