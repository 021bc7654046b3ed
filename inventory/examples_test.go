package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The examples users copy must load and describe a sane etcd cluster.
// Parsing only: nothing connects to the addresses in them.
func TestExamplesLoad(t *testing.T) {
	root := filepath.Join("..", "examples")
	var seen []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		seen = append(seen, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]bool{}
	check := func(name string, inv *Inventory, err error, wantMembers int) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ms, err := inv.EtcdMembers()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ms) != wantMembers || len(inv.Warnings) != 0 || len(inv.Masters()) == 0 || len(inv.Nodes()) == 0 {
			t.Errorf("%s: %d members, %d masters, %d nodes, warnings %v", name, len(ms), len(inv.Masters()), len(inv.Nodes()), inv.Warnings)
		}
		for _, h := range inv.Hosts {
			for _, v := range []string{"ansible_host", "ansible_port", "ansible_user"} {
				if _, ok := h.Vars[v]; ok {
					if _, err := h.StrictVar(v); err != nil {
						t.Errorf("%s: %v", name, err)
					}
				}
			}
		}
	}

	// kubeasz: as a cluster dir, the way ezrestore reads it.
	base := t.TempDir()
	dir := NewClusterDir(base, "k8s-01")
	if err := os.MkdirAll(dir.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{"kubeasz/hosts": dir.Hosts(), "kubeasz/config.yml": dir.Config()} {
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		loaded[filepath.Join(root, src)] = true
	}
	extra := filepath.Join(root, "extra-vars.yml")
	loaded[extra] = true
	inv, err := LoadCluster(dir, "@"+extra)
	check("kubeasz", inv, err, 3)
	if inv.Vars["cluster_dir"] != "/etc/kubeasz/clusters/k8s-01" || inv.Vars["ETCD_DATA_DIR"] != "/data/etcd" {
		t.Errorf("kubeasz vars: cluster_dir=%q ETCD_DATA_DIR=%q", inv.Vars["cluster_dir"], inv.Vars["ETCD_DATA_DIR"])
	}
	if h := inv.Host("192.168.1.5"); h == nil || h.Port != 2222 || h.User != "ops" || !h.Become {
		t.Errorf("kubeasz sudo worker: %+v", h)
	}
	// Also as a plain file, the way -i reads it.
	inv, err = Load(filepath.Join(root, "kubeasz/hosts"), filepath.Join(root, "kubeasz/config.yml"))
	check("kubeasz -i", inv, err, 3)

	ks := filepath.Join(root, "kubespray/inventory.yml")
	loaded[ks] = true
	inv, err = Load(ks)
	check("kubespray", inv, err, 3)
	if ms, _ := inv.EtcdMembers(); ms[0].Name != "etcd1" || ms[0].PeerURL != "https://10.0.10.11:2380" {
		t.Errorf("kubespray member %+v", ms[0])
	}
	if home, _ := os.UserHomeDir(); home != "" && !strings.HasPrefix(inv.Hosts[0].KeyFile, home) {
		t.Errorf("key file %q: ~ not expanded", inv.Hosts[0].KeyFile)
	}

	for _, p := range seen {
		if !loaded[p] && !strings.HasSuffix(p, ".md") {
			t.Errorf("example %s is not loaded by this test", p)
		}
	}
}
