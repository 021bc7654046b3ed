package offsite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
	"github.com/ezrestore/ezrestore/internal/testkit/s3test"
	"github.com/ezrestore/ezrestore/seal"
	"github.com/ezrestore/ezrestore/verify"
)

// The whole offsite path on a snapshot a real etcd wrote: encrypt, upload,
// check the store holds no plaintext, download with the identity, and prove
// the download restores into an etcd with the same revision and keys.
func TestE2EEncryptedSnapshotRoundTripRestores(t *testing.T) {
	srv := s3test.ForTest(t, "backups")
	etcdBin, _, err := etcdtest.Binaries()
	if err != nil {
		t.Fatalf("EZRESTORE_E2E=1 but %v (scripts/deps.sh installs it)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	etcd, err := etcdtest.Start(ctx, filepath.Join(dir, "etcd"), etcdtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Stop()
	secret := []byte("super-secret-token-value-0123456789")
	var rev int64
	for i := 0; i < 50; i++ {
		if rev, err = etcd.Put(ctx, fmt.Sprintf("/registry/secrets/default/s-%02d", i), secret); err != nil {
			t.Fatal(err)
		}
	}
	snap := filepath.Join(dir, "snapshot_202401021530.db")
	if err := etcd.SnapshotSave(ctx, snap); err != nil {
		t.Fatal(err)
	}
	etcd.Stop()
	plain, _ := os.ReadFile(snap)
	if !bytes.Contains(plain, secret) {
		t.Fatal("test premise: the snapshot should hold the secret in the clear")
	}

	s := storeFor(t, srv, "backups", Options{})
	idPath := filepath.Join(dir, "identity")
	recs, err := seal.ParseRecipients([]string{writeAgeIdentity(t, idPath)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(snap)
	enc, err := seal.Encrypt(f, recs)
	if err != nil {
		t.Fatal(err)
	}
	key := "prod/snapshot_202401021530.db" + seal.Suffix
	obj, err := s.Put(ctx, key, enc, int64(len(plain)))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := os.ReadFile(srv.ObjectPath("backups", key))
	if len(stored) == 0 || bytes.Contains(stored, secret) || bytes.Contains(stored, []byte("/registry/secrets")) {
		t.Fatal("the stored object holds plaintext keys or values")
	}

	ids, err := seal.LoadIdentities(idPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Get(ctx, key, GetOptions{
		Want:   Object{Size: obj.Size, SHA256: obj.SHA256},
		Decode: func(r io.Reader) (io.Reader, error) { return seal.Decrypt(r, ids) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	if got, _ := os.ReadFile(d.Path); !bytes.Equal(got, plain) {
		t.Fatal("the downloaded snapshot differs from the one uploaded")
	}
	res, err := verify.Restore(ctx, d.Path, verify.Options{BinDir: filepath.Dir(etcdBin), Want: verify.Expect{Revision: rev, Keys: 50}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restored from %s: etcd %s at revision %d with %d keys", s.URL(key), res.EtcdVersion, res.Revision, res.Keys)
}
