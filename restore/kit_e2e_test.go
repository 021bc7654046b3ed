package restore_test

// End-to-end: the bastion is lost. The offsite backups carry the cluster
// dir's rebuild kit; `clusters fetch` recreates the cluster dir on a fresh
// base from the store alone, and plan and restore from there bring a
// deleted key back.

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/internal/testkit/s3test"
	"github.com/ezrestore/ezrestore/lab"
)

const kitBucket = "ezrestore-kit"

// storedNames lists the objects of a bucket's prefix whose names end in
// suffix, as the server's files (what the store holds, read without ezrestore).
func storedNames(t *testing.T, srv *s3test.Server, bucket, prefix, suffix string) []string {
	t.Helper()
	des, err := os.ReadDir(srv.ObjectPath(bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), suffix) {
			out = append(out, de.Name())
		}
	}
	return out
}

// storedKits lists the rebuild kits of the prefix.
func storedKits(t *testing.T, srv *s3test.Server, prefix string) []string {
	return storedNames(t, srv, kitBucket, prefix, ".kit.tar.age")
}

func TestRebuildKitFromTheStore(t *testing.T) {
	srv := s3test.ForTest(t, kitBucket)
	l := labtest.Up(t, lab.Options{Name: "daytwo-kit", Nodes: 1})
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	keyDir := t.TempDir()
	identity, recipient := ageKey(t, keyDir, "age.key")
	wrongIdentity, _ := ageKey(t, keyDir, "other.key")
	prefix := "s3://" + kitBucket + "/" + l.Opts.Name
	a := l.EtcdHosts()[0].Address
	seedKeys(t, l)
	// The bastion: a base of its own holding a copy of the cluster dir that
	// names its own paths, as a kubeasz bastion's does. It is deleted
	// below; the lab keeps its own dir for its checks.
	bastion := t.TempDir()
	bdir := filepath.Join(bastion, "clusters", l.Opts.Name)
	os.MkdirAll(filepath.Dir(bdir), 0o700)
	if out, err := exec.Command("cp", "-a", l.Dir.Path, bdir).CombinedOutput(); err != nil {
		t.Fatalf("copying the cluster dir: %v: %s", err, out)
	}
	hosts, _ := os.ReadFile(filepath.Join(bdir, "hosts"))
	hosts = bytes.ReplaceAll(hosts, []byte(l.Dir.Path), []byte(bdir))
	hosts = bytes.ReplaceAll(hosts, []byte(`base_dir="`+l.Dir.Base+`"`), []byte(`base_dir="`+bastion+`"`))
	if err := os.WriteFile(filepath.Join(bdir, "hosts"), hosts, 0o600); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(hosts, []byte(l.Dir.Path)) {
		t.Fatalf("the bastion's inventory still names the lab's cluster dir")
	}

	// Without a recipient the snapshot goes offsite as before, the kit does not.
	out, err := cliAt(t, bastion, "backup", l.Opts.Name, "--to", prefix)
	if err != nil {
		t.Fatalf("backup --to without recipient: %v", err)
	}
	requireContains(t, "backup --to without recipient", out, "no rebuild kit: ", "only encrypted", "--age-recipient")
	if k := storedKits(t, srv, l.Opts.Name); len(k) != 0 {
		t.Fatalf("a kit was stored unencrypted-only run: %v", k)
	}

	out, err = cliAt(t, bastion, "backup", l.Opts.Name, "--to", prefix, "--age-recipient", recipient)
	if err != nil {
		t.Fatalf("backup --to --age-recipient: %v", err)
	}
	requireContains(t, "backup --to --age-recipient", out, "rebuild kit "+prefix+"/snapshot_", ".db.age.kit.tar.age", "ssl/ca-key.pem", "ssh/known_hosts")
	kits := storedKits(t, srv, l.Opts.Name)
	if len(kits) != 1 {
		t.Fatalf("kits in the store: %v", kits)
	}
	stored, err := os.ReadFile(srv.ObjectPath(kitBucket, l.Opts.Name+"/"+kits[0]))
	if err != nil {
		t.Fatal(err)
	}
	// The kit cannot be read without the identity: nothing of the cluster
	// dir in the clear, and the age header first.
	caKey, _ := os.ReadFile(filepath.Join(bdir, "ssl", "ca-key.pem"))
	sshKey, _ := os.ReadFile(filepath.Join(bdir, "ssh", "id_ed25519"))
	if len(caKey) == 0 || len(hosts) == 0 || len(sshKey) == 0 {
		t.Fatal("the lab's cluster dir lacks ssl/ca-key.pem, hosts or its SSH key: the checks below would prove nothing")
	}
	if !bytes.HasPrefix(stored, []byte("age-encryption.org/v1\n")) {
		t.Errorf("the stored kit is not an age file")
	}
	for what, secret := range map[string][]byte{"the CA key": caKey[:40], "the inventory": hosts[:40], "a host address": []byte(a), "a file name": []byte("ca-key.pem")} {
		if bytes.Contains(stored, secret) {
			t.Errorf("the stored kit holds %s in the clear", what)
		}
	}
	// Opened with the identity: the kit holds what it should, and no SSH private key.
	ids, err := age.ParseIdentities(mustOpen(t, identity))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := age.Decrypt(bytes.NewReader(stored), ids...)
	if err != nil {
		t.Fatalf("the kit does not open with the recipient's identity: %v", err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(plain)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	for _, want := range []string{"hosts", "config.yml", "ssl/ca-key.pem", "ssh/known_hosts"} {
		if _, ok := files[want]; !ok {
			t.Errorf("the kit lacks %s", want)
		}
	}
	for name, data := range files {
		if bytes.Contains(data, sshKey[:60]) || strings.HasSuffix(name, "id_ed25519") {
			t.Errorf("the kit holds the SSH private key (%s)", name)
		}
	}

	// The key is deleted, then the bastion is lost: its cluster dir is
	// gone. The operator kept the SSH key apart from the bastion.
	etcdctl(t, l, a, "del /registry/pods/default/net-test3")
	keptKey := filepath.Join(keyDir, "id_ed25519")
	copyFileT(t, filepath.Join(bdir, "ssh", "id_ed25519"), keptKey)
	if err := os.RemoveAll(bdir); err != nil {
		t.Fatal(err)
	}

	fresh := t.TempDir()
	dir := filepath.Join(fresh, "clusters", l.Opts.Name)
	out, err = cliAt(t, fresh, "clusters", "fetch", prefix, "--age-identity", wrongIdentity)
	if err == nil {
		t.Fatal("clusters fetch with a wrong identity succeeded")
	}
	requireContains(t, "clusters fetch with a wrong identity", out, "does not decrypt", "give the identity matching the --age-recipient")
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("a refused fetch left a cluster dir")
	}
	out, err = cliAt(t, fresh, "clusters", "fetch", prefix, "--age-identity", identity)
	if err != nil {
		t.Fatalf("clusters fetch: %v", err)
	}
	next := regexp.MustCompile(`Next: (ezrestore plan .*)`).FindStringSubmatch(out)
	if next == nil || !strings.Contains(next[1], "--snapshot "+prefix+"/snapshot_") {
		t.Fatalf("clusters fetch does not print the next command")
	}
	// The inventory names the key the kit left out: the operator puts it there.
	named := filepath.Join(dir, "ssh", "id_ed25519")
	requireContains(t, "clusters fetch", out, "the inventory names "+named+", which the kit does not hold", "hosts: 3 path(s) of the old bastion rewritten")
	if _, err := os.Stat(filepath.Join(dir, "ssh", "id_ed25519")); err == nil {
		t.Error("the fetched cluster dir has the SSH private key")
	}
	if out, err = cliAt(t, fresh, "clusters", "fetch", prefix, "--age-identity", identity); err == nil || !strings.Contains(out, "exists") {
		t.Errorf("a second fetch should refuse the existing cluster dir: %v", err)
	}
	copyFileT(t, keptKey, named)

	// From the fetched dir alone (and the key put back): plan, then the restore.
	before := allStates(t, l)
	out, err = cliAt(t, fresh, "plan", l.Opts.Name, "--snapshot", prefix+"/latest", "--age-identity", identity)
	if err != nil {
		t.Fatalf("plan from the fetched cluster dir: %v", err)
	}
	requireContains(t, "plan from the fetched dir", out, "--name "+lab.EtcdMemberName(a))
	requireUnchanged(t, l, before, "plan")
	if _, err := cliAt(t, fresh, "restore", l.Opts.Name, "--snapshot", prefix+"/latest", "--age-identity", identity, "--yes"); err != nil {
		t.Fatalf("restore from the fetched cluster dir: %v", err)
	}
	requireHealthy(t, l)
	if got := keys(t, l, a); !strings.Contains(got, "/registry/pods/default/net-test3") {
		t.Fatalf("net-test3 not back after the restore from the fetched cluster dir:\n%s", got)
	}
	// The run record is in the fetched dir, where the operator works now.
	if recs, _ := filepath.Glob(filepath.Join(dir, "restores", "*", "plan.txt")); len(recs) == 0 {
		t.Errorf("no run record in the fetched cluster dir")
	}

	// Retention keeps each kit with its snapshot: pruning to one backup
	// removes the older snapshot and its kit together.
	if _, err := cliAt(t, fresh, "backup", l.Opts.Name, "--to", prefix, "--age-recipient", recipient); err != nil {
		t.Fatal(err)
	}
	if k := storedKits(t, srv, l.Opts.Name); len(k) != 2 {
		t.Fatalf("kits before pruning: %v", k)
	}
	if _, err := cliAt(t, fresh, "backup", "prune", l.Opts.Name, "--to", prefix, "--keep-last", "1"); err != nil {
		t.Fatal(err)
	}
	des, _ := os.ReadDir(srv.ObjectPath(kitBucket, l.Opts.Name))
	var snaps, left []string
	for _, de := range des {
		switch {
		case strings.HasSuffix(de.Name(), ".kit.tar.age"):
			left = append(left, strings.TrimSuffix(de.Name(), ".kit.tar.age"))
		case strings.HasSuffix(de.Name(), ".db") || strings.HasSuffix(de.Name(), ".db.age"):
			snaps = append(snaps, de.Name())
		}
	}
	if len(left) != 1 || len(snaps) != 1 || left[0] != snaps[0] {
		t.Errorf("after pruning to one: snapshots %v, kits %v; want one of each, paired", snaps, left)
	}
}

func mustOpen(t *testing.T, p string) io.Reader {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(data)
}
