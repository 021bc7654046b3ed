package backup

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/inventory"
)

// With every member unreachable: an error naming each one, and no file or dir written.
func TestNoReachableMember(t *testing.T) {
	base := t.TempDir()
	cd := inventory.NewClusterDir(base, "dead")
	if err := os.MkdirAll(cd.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	hosts := "[etcd]\n127.0.0.1 ansible_port=1\n127.0.0.2 ansible_port=1\n\n[kube_master]\n127.0.0.1 ansible_port=1\n\n[kube_node]\n127.0.0.1 ansible_port=1\n"
	if err := os.WriteFile(cd.Hosts(), []byte(hosts), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Take(context.Background(), Options{Target: cluster.Selector{Base: base, Cluster: "dead"}})
	if err == nil || res != nil {
		t.Fatalf("Take = %v, %v; want an error", res, err)
	}
	if !errors.Is(err, ErrNoHealthyMember) || !strings.Contains(err.Error(), "127.0.0.1") || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Errorf("error should name every member: %v", err)
	}
	if _, err := os.Stat(cd.BackupDir()); !os.IsNotExist(err) {
		t.Errorf("backup dir written: %v", err)
	}
}
