package kit

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, p, content string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A kubeasz cluster dir as the lab writes it, plus what a kit leaves out.
func clusterDir(t *testing.T) (base, dir string) {
	base = t.TempDir()
	dir = filepath.Join(base, "clusters", "k8s-01")
	write(t, filepath.Join(dir, "hosts"), "[etcd]\n10.0.0.1\n[all:vars]\nansible_ssh_private_key_file="+dir+"/ssh/id_ed25519\nbase_dir=\""+base+"\"\n")
	write(t, filepath.Join(dir, "config.yml"), "ETCD_DATA_DIR: /var/lib/etcd\n")
	write(t, filepath.Join(dir, "kubectl.kubeconfig"), "apiVersion: v1\n")
	write(t, filepath.Join(dir, "ssl", "ca-key.pem"), "-----BEGIN EC PRIVATE KEY-----\nx\n-----END EC PRIVATE KEY-----\n")
	write(t, filepath.Join(dir, "ssl", "ca.pem"), "-----BEGIN CERTIFICATE-----\n")
	write(t, filepath.Join(dir, "ssh", "id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n")
	write(t, filepath.Join(dir, "ssh", "deploy_rsa"), "-----BEGIN RSA PRIVATE KEY-----\nsecret\n")
	write(t, filepath.Join(dir, "ssh", "id_ed25519.pub"), "ssh-ed25519 AAAA\n")
	write(t, filepath.Join(dir, "ssh", "known_hosts"), "10.0.0.1 ssh-ed25519 AAAA\n")
	write(t, filepath.Join(dir, "backup", "snapshot.db"), "db")
	write(t, filepath.Join(dir, "restores", "r1", "plan.txt"), "plan")
	return base, dir
}

func TestBuildLeavesPrivateSSHKeysOut(t *testing.T) {
	base, dir := clusterDir(t)
	data, m, err := Build(Source{Dir: dir, Cluster: "k8s-01", Base: base}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"config.yml", "hosts", "kubectl.kubeconfig", "ssh/id_ed25519.pub", "ssh/known_hosts", "ssl/ca-key.pem", "ssl/ca.pem"}
	if strings.Join(m.Files, " ") != strings.Join(want, " ") {
		t.Errorf("files %v, want %v", m.Files, want)
	}
	if bytes.Contains(data, []byte("PRIVATE KEY-----\nsecret")) {
		t.Error("an SSH private key is in the kit")
	}
	left := strings.Join(m.LeftOut, "; ")
	for _, w := range []string{"ssh/id_ed25519 (an SSH private key", "ssh/deploy_rsa (an SSH private key", "backup/", "restores/"} {
		if !strings.Contains(left, w) {
			t.Errorf("left out %q not reported: %s", w, left)
		}
	}
	_, m, err = Build(Source{Dir: dir, Cluster: "k8s-01", Base: base, IncludeSSHKey: true}, time.Now())
	if err != nil || !strings.Contains(strings.Join(m.Files, " "), "ssh/id_ed25519 ") || !m.SSHKeyIncluded {
		t.Errorf("--include-ssh-key: %v %v", err, m.Files)
	}
}

func TestUnpackRelocatesAndNeverOverwrites(t *testing.T) {
	base, dir := clusterDir(t)
	data, _, err := Build(Source{Dir: dir, Cluster: "k8s-01", Base: base}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	newBase := t.TempDir()
	dest := filepath.Join(newBase, "clusters", "k8s-01")
	u, err := Unpack(bytes.NewReader(data), dest, newBase)
	if err != nil {
		t.Fatal(err)
	}
	hosts, _ := os.ReadFile(filepath.Join(dest, "hosts"))
	if strings.Contains(string(hosts), base) || !strings.Contains(string(hosts), dest+"/ssh/id_ed25519") || !strings.Contains(string(hosts), `base_dir="`+newBase+`"`) {
		t.Errorf("hosts not relocated:\n%s", hosts)
	}
	if len(u.Missing) != 1 || u.Missing[0] != filepath.Join(dest, "ssh", "id_ed25519") {
		t.Errorf("missing %v: the inventory names the private key the kit left out", u.Missing)
	}
	if len(u.Rewrites) != 1 || u.Rewrites[0].File != "hosts" || u.Rewrites[0].Count != 2 {
		t.Errorf("rewrites %+v", u.Rewrites)
	}
	for p, mode := range map[string]os.FileMode{dest: 0o700, filepath.Join(dest, "ssl"): 0o700, filepath.Join(dest, "ssl", "ca-key.pem"): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", p, fi.Mode().Perm(), err, mode)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "ssh", "id_ed25519")); err == nil {
		t.Error("a private key was unpacked")
	}
	// Never over an existing cluster dir, and nothing left beside it.
	if _, err := Unpack(bytes.NewReader(data), dest, newBase); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("unpack over an existing dir: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	if len(entries) != 1 {
		t.Errorf("left beside the cluster dir: %v", entries)
	}
}

func TestUnpackRefusesEntriesOutside(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{ManifestName, "../escape"} {
		data := []byte("{}")
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	dest := filepath.Join(t.TempDir(), "clusters", "x")
	if _, err := Unpack(&buf, dest, ""); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("a ../ entry: %v", err)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Error("a refused kit left a cluster dir")
	}
}
