package restore_test

// End-to-end: backups offsite to a real S3 server (versitygw on 127.0.0.1),
// encrypted with age, listed, restored and pruned from there, proven
// restorable, and scheduled by a real systemd timer on a lab host acting as
// the bastion.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/ezrestore/ezrestore/internal/testkit/labtest"
	"github.com/ezrestore/ezrestore/internal/testkit/s3test"
	"github.com/ezrestore/ezrestore/lab"
)

const offsiteBucket = "ezrestore-os"

func ageKey(t *testing.T, dir, name string) (identityFile, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, id.Recipient().String()
}

// storedObjects lists the snapshot objects of the prefix as the server's
// files (what the store holds, read without ezrestore).
func storedObjects(t *testing.T, srv *s3test.Server, prefix string) []string {
	t.Helper()
	return storedNames(t, srv, offsiteBucket, prefix, ".db.age")
}

func TestOffsiteBackupRestore(t *testing.T) {
	srv := s3test.ForTest(t, offsiteBucket)
	l := labtest.Up(t, lab.Options{Name: "os-e2e", Nodes: -1})
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	// The temp files of downloads go here, to check that none is left.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	keyDir := t.TempDir()
	identity, recipient := ageKey(t, keyDir, "age.key")
	wrongIdentity, _ := ageKey(t, keyDir, "other.key")
	prefix := "s3://" + offsiteBucket + "/" + l.Opts.Name
	a := l.EtcdHosts()[0].Address
	seedKeys(t, l)

	// A store that refuses: the error names bucket and endpoint, and no
	// snapshot is taken.
	out, err := cli(t, l, "backup", l.Opts.Name, "--to", "s3://no-such-bucket-os/x")
	requireContains(t, "backup to a missing bucket", out, "no-such-bucket-os", srv.Endpoint, "no snapshot was taken")
	if err == nil {
		t.Fatal("backup to a missing bucket succeeded")
	}
	if _, err := os.Stat(l.Dir.BackupDir()); err == nil {
		if des, _ := os.ReadDir(l.Dir.BackupDir()); len(des) > 0 {
			t.Fatalf("a refused store still left backups: %v", des)
		}
	}
	// No etcd binary for --verify-restore: said, not skipped.
	out, err = cli(t, l, "backup", l.Opts.Name, "--verify-restore", "--etcd-bin", filepath.Join(tmp, "none"))
	if err == nil {
		t.Fatal("--verify-restore without etcd succeeded")
	}
	requireContains(t, "--verify-restore without etcd", out, "no etcd binary", "--etcd-bin", "no snapshot was taken")

	// The encrypted offsite backup, proven to restore with the cached etcd 3.5.
	etcdBin, _, err := lab.EnsureEtcd(context.Background(), "3.5", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, l, "backup", l.Opts.Name, "--to", prefix, "--age-recipient", recipient, "--verify-restore", "--etcd-bin", etcdBin)
	if err != nil {
		t.Fatalf("backup --to: %v", err)
	}
	requireContains(t, "backup --to", out, "restores: a throwaway etcd", "offsite "+prefix+"/snapshot_", ".db.age", "encrypted to 1 age recipient")
	if strings.Contains(out, "WARNING") {
		t.Errorf("backup --to left a warning:\n%s", out)
	}
	objs := storedObjects(t, srv, l.Opts.Name)
	if len(objs) != 1 {
		t.Fatalf("objects in the store: %v", objs)
	}
	name := objs[0]
	stored, err := os.ReadFile(srv.ObjectPath(offsiteBucket, l.Opts.Name+"/"+name))
	if err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(filepath.Join(l.Dir.BackupDir(), strings.TrimSuffix(name, ".age")))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"net-test3", "/registry/pods/default", "value-of-net-test1"} {
		if !bytes.Contains(local, []byte(secret)) {
			t.Fatalf("the local backup does not hold %q: the check below would prove nothing", secret)
		}
		if bytes.Contains(stored, []byte(secret)) {
			t.Errorf("the stored object holds %q in the clear", secret)
		}
	}

	// The key is deleted and the local backups are gone: only the store has it.
	etcdctl(t, l, a, "del /registry/pods/default/net-test3")
	if err := os.RemoveAll(l.Dir.BackupDir()); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, l, "snapshots", prefix, "--age-identity", identity)
	if err != nil {
		t.Fatalf("snapshots s3://: %v", err)
	}
	requireContains(t, "snapshots s3://", out, name, " ok ")
	out, err = cli(t, l, "snapshots", prefix)
	if err != nil {
		t.Fatalf("snapshots s3:// without identity: %v", err)
	}
	requireContains(t, "snapshots s3:// without identity", out, name, "give --age-identity")
	out, _ = cli(t, l, "snapshot", "find", "net-test3", prefix, "--age-identity", identity)
	requireContains(t, "snapshot find s3://", out, name+" (", "/registry/pods/default/net-test3", "live in 1 of 1")
	out, err = cli(t, l, "snapshot", "inspect", prefix+"/latest", "--age-identity", identity)
	if err != nil {
		t.Fatalf("snapshot inspect s3://: %v", err)
	}
	requireContains(t, "snapshot inspect s3://", out, "verified", prefix+"/"+name)
	out, err = cli(t, l, "snapshot", "verify", prefix+"/"+name, "--age-identity", identity, "--etcd-bin", etcdBin)
	if err != nil {
		t.Fatalf("snapshot verify s3://: %v", err)
	}
	requireContains(t, "snapshot verify s3://", out, "restores: etcd", "as recorded")

	// No identity, a wrong one, a damaged object: each refused, no host changed.
	before := allStates(t, l)
	url := prefix + "/" + name
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", url, "--yes")
	if err == nil {
		t.Fatal("restore of an encrypted snapshot without identity succeeded")
	}
	requireContains(t, "restore without identity", out, "--age-identity", "Nothing was changed")
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", url, "--age-identity", wrongIdentity, "--yes")
	if err == nil {
		t.Fatal("restore with a wrong identity succeeded")
	}
	requireContains(t, "restore with a wrong identity", out, "does not decrypt", "Nothing was changed")
	if strings.Contains(out, "Connecting to") {
		t.Errorf("a wrong identity should be refused before any host is contacted:\n%s", out)
	}
	objPath := srv.ObjectPath(offsiteBucket, l.Opts.Name+"/"+name)
	damaged := append([]byte(nil), stored...)
	damaged[len(damaged)/2] ^= 0x01
	if err := os.WriteFile(objPath, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", url, "--age-identity", identity, "--yes")
	if err == nil {
		t.Fatal("restore of a damaged object succeeded")
	}
	requireContains(t, "restore of a damaged object", out, "differs", "Nothing was changed")
	requireUnchanged(t, l, before, "refused offsite restores")
	if err := os.WriteFile(objPath, stored, 0o600); err != nil {
		t.Fatal(err)
	}

	// The restore from the store brings the key back, and leaves no temp file.
	out, err = cli(t, l, "restore", l.Opts.Name, "--snapshot", url, "--age-identity", identity, "--yes")
	if err != nil {
		t.Fatalf("restore --snapshot s3://: %v", err)
	}
	requireContains(t, "restore --snapshot s3://", out, url)
	requireHealthy(t, l)
	if got := keys(t, l, a); !strings.Contains(got, "/registry/pods/default/net-test3") {
		t.Fatalf("net-test3 not back after the offsite restore:\n%s", got)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "ezrestore-s3-*")); len(left) > 0 {
		t.Errorf("downloads left behind: %v", left)
	}

	// Retention: two more backups with --keep-last 2 leave two offsite (and two local).
	for i := 0; i < 2; i++ {
		if _, err := cli(t, l, "backup", l.Opts.Name, "--to", prefix, "--age-recipient", recipient, "--keep-last", "2"); err != nil {
			t.Fatalf("backup --keep-last 2: %v", err)
		}
	}
	if objs := storedObjects(t, srv, l.Opts.Name); len(objs) != 2 {
		t.Errorf("objects after --keep-last 2: %v", objs)
	} else if objs[0] == name || objs[1] == name {
		t.Errorf("--keep-last 2 kept the oldest %s: %v", name, objs)
	}
	if m, _ := filepath.Glob(filepath.Join(l.Dir.BackupDir(), "snapshot_*.db")); len(m) != 2 {
		t.Errorf("local backups after --keep-last 2: %v", m)
	}
	out, err = cli(t, l, "backup", "prune", l.Opts.Name, "--to", prefix, "--keep-last", "1", "--dry-run")
	if err != nil {
		t.Fatalf("backup prune --dry-run: %v", err)
	}
	requireContains(t, "backup prune --dry-run", out, "would remove 1", "last snapshot", prefix, "copied by snapshot.db")
	if objs := storedObjects(t, srv, l.Opts.Name); len(objs) != 2 {
		t.Errorf("a dry run removed objects: %v", objs)
	}

	out, err = cli(t, l, "backup", "schedule", l.Opts.Name, "--every", "30m", "--to", prefix, "--age-recipient", recipient, "--keep-daily", "7", "--print")
	if err != nil {
		t.Fatalf("backup schedule --print: %v", err)
	}
	requireContains(t, "backup schedule --print", out, "[Timer]", "OnUnitActiveSec=1800s", "Type=oneshot",
		"ExecStart="+binaryAbs(t)+" --base "+l.Opts.Base+" backup "+l.Opts.Name, "--to "+prefix, "--age-recipient "+recipient, "--keep-daily 7")

	scheduleOnLabHost(t, l)
}

func binaryAbs(t *testing.T) string {
	p, err := filepath.Abs(binary)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// scheduleOnLabHost makes the first etcd host the bastion: a static
// ezrestore and the cluster dir (its SSH key, known_hosts and CA, at the
// same paths the inventory names) are copied in, the schedule is installed
// with its real systemd, and a backup made by the timer must appear.
func scheduleOnLabHost(t *testing.T, l *lab.Lab) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bastion := l.EtcdHosts()[0].Address
	static := filepath.Join(t.TempDir(), "ezrestore")
	build := exec.CommandContext(ctx, "go", "build", "-o", static, "../cmd/ezrestore")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	pipe := func(what string, stdin *exec.Cmd, remote string) {
		t.Helper()
		ssh := exec.CommandContext(ctx, "ssh", append(l.SSHArgs(bastion), "--", remote)...)
		var err error
		if ssh.Stdin, err = stdin.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
		if err := stdin.Start(); err != nil {
			t.Fatal(err)
		}
		out, err := ssh.CombinedOutput()
		if werr := stdin.Wait(); err == nil {
			err = werr
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
	}
	pipe("copy ezrestore", exec.CommandContext(ctx, "cat", static), "install -m 0755 /dev/stdin /usr/local/bin/ezrestore")
	base := l.Opts.Base
	pipe("copy the cluster dir", exec.CommandContext(ctx, "tar", "-C", base, "-cf", "-", "clusters/"+l.Opts.Name+"/hosts",
		"clusters/"+l.Opts.Name+"/config.yml", "clusters/"+l.Opts.Name+"/ssh", "clusters/"+l.Opts.Name+"/ssl"),
		"mkdir -p "+base+" && tar -C "+base+" -xf -")

	unit := "ezrestore-backup-" + l.Opts.Name
	backupDir := l.Dir.BackupDir()
	sh(t, l, bastion, "/usr/local/bin/ezrestore --base "+base+" backup schedule "+l.Opts.Name+" --every 1m --keep-last 3")
	if got := sh(t, l, bastion, "systemctl is-active "+unit+".timer"); got != "active" {
		t.Fatalf("timer %s", got)
	}
	t.Logf("%s", sh(t, l, bastion, "systemctl list-timers --all "+unit+".timer; cat /etc/systemd/system/"+unit+".service"))
	// The timer's first run comes at once (the host booted more than a
	// minute ago); wait for the backup it makes, and a second one a minute on.
	deadline := time.Now().Add(4 * time.Minute)
	made := 0
	for time.Now().Before(deadline) {
		made, _ = strconv.Atoi(sh(t, l, bastion, "ls "+backupDir+" 2>/dev/null | grep -c '^snapshot_.*\\.db$' || true"))
		if made >= 2 {
			break
		}
		time.Sleep(5 * time.Second)
	}
	journal := sh(t, l, bastion, "journalctl -u "+unit+".service --no-pager | tail -30")
	if made < 2 {
		t.Fatalf("the timer made %d backups in 4 minutes; journal:\n%s", made, journal)
	}
	t.Logf("timer-made backups in %s:\n%s\njournal:\n%s", backupDir, sh(t, l, bastion, "ls -l "+backupDir), journal)
	if res := sh(t, l, bastion, "systemctl show -p Result --value "+unit+".service"); res != "success" {
		t.Errorf("service result %q", res)
	}
	// A failing backup fails the unit: systemctl --failed shows it.
	sh(t, l, bastion, "mv "+base+"/clusters/"+l.Opts.Name+"/hosts /root/hosts.aside")
	_, _ = l.Exec(ctx, bastion, "systemctl start "+unit+".service")
	if res := sh(t, l, bastion, "systemctl show -p Result --value "+unit+".service"); res == "success" {
		t.Errorf("a backup without inventory left the unit %q", res)
	}
	requireContains(t, "systemctl --failed", sh(t, l, bastion, "systemctl --failed --no-legend"), unit+".service")
	sh(t, l, bastion, "mv /root/hosts.aside "+base+"/clusters/"+l.Opts.Name+"/hosts")

	out := sh(t, l, bastion, "/usr/local/bin/ezrestore --base "+base+" backup schedule "+l.Opts.Name+" --remove")
	requireContains(t, "schedule --remove", out, unit+".timer", unit+".service")
	if got := sh(t, l, bastion, "ls /etc/systemd/system/"+unit+".* 2>/dev/null | wc -l; systemctl is-active "+unit+".timer || true"); !strings.HasPrefix(got, "0") || !strings.Contains(got, "inactive") {
		t.Errorf("after --remove: %s", got)
	}
}
