package offsite

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ezrestore/ezrestore/internal/testkit/s3test"
	"github.com/ezrestore/ezrestore/seal"
)

// storeFor points the AWS environment at srv, as an operator would, and opens bucket.
func storeFor(t *testing.T, srv *s3test.Server, bucket string, o Options) *Store {
	t.Helper()
	awsEnv(t, "", "")
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	s, err := Open(context.Background(), bucket, o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Endpoint != srv.Endpoint {
		t.Fatalf("endpoint %s, want %s", s.Endpoint, srv.Endpoint)
	}
	return s
}

func randomFile(t *testing.T, dir string, size int) (string, string) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(dir, "snapshot_202401021530.db")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	return p, hex.EncodeToString(h[:])
}

func TestE2EPutListGetDelete(t *testing.T) {
	srv := s3test.ForTest(t, "backups")
	ctx := context.Background()
	s := storeFor(t, srv, "backups", Options{})
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, sum := randomFile(t, dir, 3<<20+123)
	obj, err := s.PutFile(ctx, "prod/snapshot_202401021530.db", src)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != 3<<20+123 || obj.SHA256 != sum {
		t.Fatalf("Put returned %+v, want size %d sha %s", obj, 3<<20+123, sum)
	}
	side := []byte(`{"revision": 42}`)
	if _, err := s.Put(ctx, "prod/snapshot_202401021530.db.json", bytes.NewReader(side), int64(len(side))); err != nil {
		t.Fatal(err)
	}
	// An older encrypted one with its sidecar under the plain name, and
	// things List must leave out: a deeper key and a stray file.
	time.Sleep(1100 * time.Millisecond) // S3 times have one-second resolution
	for k, v := range map[string]string{
		"prod/snapshot_202401011530.db.age":  "age-encryption.org/v1...",
		"prod/snapshot_202401011530.db.json": "{}",
		"prod/old/snapshot_202301011530.db":  "x",
		"prod/notes.txt":                     "x",
	} {
		if _, err := s.Put(ctx, k, strings.NewReader(v), int64(len(v))); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := s.List(ctx, "prod/")
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("List: %+v", ls)
	}
	// Newest first by store time: the .age object was put last.
	if ls[0].Name != "snapshot_202401011530.db.age" || !ls[0].Encrypted || ls[0].Sidecar != "prod/snapshot_202401011530.db.json" {
		t.Errorf("List[0] = %+v", ls[0])
	}
	if ls[1].Name != "snapshot_202401021530.db" || ls[1].Size != 3<<20+123 || ls[1].Sidecar != "prod/snapshot_202401021530.db.json" || ls[1].Modified.IsZero() {
		t.Errorf("List[1] = %+v", ls[1])
	}
	if data, err := s.GetBytes(ctx, ls[1].Sidecar, 1<<20); err != nil || !bytes.Equal(data, side) {
		t.Fatalf("GetBytes sidecar: %q %v", data, err)
	}

	d, err := s.Get(ctx, "prod/snapshot_202401021530.db", GetOptions{Want: Object{Size: obj.Size, SHA256: sum}})
	if err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, d.Path)
	if got := fileSHA(t, d.Path); got != sum || d.Stored.SHA256 != sum {
		t.Fatalf("downloaded sha %s (stored %s), want %s", got, d.Stored.SHA256, sum)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(d.Path)); !os.IsNotExist(err) {
		t.Fatalf("Remove left the temp dir: %v", err)
	}

	if err := s.Delete(ctx, "prod/snapshot_202401021530.db"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, "prod/snapshot_202401021530.db", GetOptions{})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "s3://backups/prod/snapshot_202401021530.db") {
		t.Fatalf("Get after Delete: want ErrNotFound naming the object, got %v", err)
	}
	if _, err := s.Head(ctx, "prod/snapshot_202401021530.db"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Head after Delete: want ErrNotFound, got %v", err)
	}
}

func checkPrivate(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	di, err := os.Stat(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("download %s is %v in a dir %v, want 0600 in 0700", p, fi.Mode().Perm(), di.Mode().Perm())
	}
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

func TestE2EMultipartEncryptedRoundTrip(t *testing.T) {
	srv := s3test.ForTest(t, "backups")
	ctx := context.Background()
	// 5 MiB parts (S3's floor), 2 in flight: 23 MiB makes 5 parts, the last short.
	s := storeFor(t, srv, "backups", Options{PartSize: 5 << 20, Concurrency: 2})
	dir := t.TempDir()
	src, sum := randomFile(t, dir, 23<<20+7)

	idPath := filepath.Join(dir, "id")
	recipient := writeAgeIdentity(t, idPath)
	recs, err := seal.ParseRecipients([]string{recipient}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(src)
	defer f.Close()
	enc, err := seal.Encrypt(f, recs)
	if err != nil {
		t.Fatal(err)
	}
	key := "prod/snapshot_202401021530.db.age"
	obj, err := s.Put(ctx, key, enc, 23<<20)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size <= 23<<20 {
		t.Fatalf("encrypted object of %d bytes is not larger than its plaintext", obj.Size)
	}
	// The stored file is the object, in one piece, without the plaintext.
	stored, err := os.ReadFile(srv.ObjectPath("backups", key))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := os.ReadFile(src)
	if int64(len(stored)) != obj.Size || bytes.Contains(stored, plain[1<<20:1<<20+4096]) {
		t.Fatalf("stored object: %d bytes (want %d), or it holds plaintext", len(stored), obj.Size)
	}
	// ETags of multipart objects end in -<parts>.
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	if etag := strings.Trim(*head.ETag, `"`); !strings.HasSuffix(etag, "-5") {
		t.Fatalf("ETag %s: not a 5-part multipart object", etag)
	}

	ids, err := seal.LoadIdentities(idPath)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := s.Peek(ctx, key, seal.HeaderPeek)
	if err != nil {
		t.Fatal(err)
	}
	if err := seal.CheckHeader(bytes.NewReader(hdr), ids); err != nil {
		t.Fatal(err)
	}
	d, err := s.Get(ctx, key, GetOptions{
		Want:   Object{SHA256: obj.SHA256},
		Decode: func(r io.Reader) (io.Reader, error) { return seal.Decrypt(r, ids) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	if filepath.Base(d.Path) != "snapshot_202401021530.db" || fileSHA(t, d.Path) != sum || d.Size != 23<<20+7 {
		t.Fatalf("decrypted download %s (%d bytes) does not match the source", d.Path, d.Size)
	}
	checkPrivate(t, d.Path)

	// A wrong identity is refused from the header alone.
	wrong := filepath.Join(dir, "wrong")
	writeAgeIdentity(t, wrong)
	wids, _ := seal.LoadIdentities(wrong)
	if err := seal.CheckHeader(bytes.NewReader(hdr), wids); !errors.Is(err, seal.ErrWrongIdentity) {
		t.Fatalf("wrong identity: %v", err)
	}
}

func TestE2EDamagedObjectIsRefused(t *testing.T) {
	srv := s3test.ForTest(t, "backups")
	ctx := context.Background()
	s := storeFor(t, srv, "backups", Options{})
	dir := t.TempDir()
	src, sum := randomFile(t, dir, 1<<20)
	key := "snapshot_202401021530.db"
	obj, err := s.PutFile(ctx, key, src)
	if err != nil {
		t.Fatal(err)
	}
	// One byte changes on the store's disk after the upload.
	p := srv.ObjectPath("backups", key)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, 4096)
	b[0] ^= 0x40
	f.WriteAt(b, 4096)
	f.Close()

	if _, err := s.Verify(ctx, key, obj.Size, sum); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Verify of a damaged object: want ErrDamaged, got %v", err)
	}
	_, err = s.Get(ctx, key, GetOptions{Dir: dir, Want: Object{Size: obj.Size, SHA256: sum}})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), sum) {
		t.Fatalf("Get of a damaged object: want ErrDamaged naming the expected sha256, got %v", err)
	}
	// Nothing is left behind by the refused download.
	left, _ := filepath.Glob(filepath.Join(dir, "ezrestore-s3-*"))
	if len(left) != 0 {
		t.Fatalf("refused download left %v", left)
	}
}

// A store that changes bytes in transit (here: a proxy flipping one byte of
// every upload) makes Put fail and leaves no object.
func TestE2EVerifyAfterUploadCatchesCorruption(t *testing.T) {
	srv := s3test.ForTest(t, "backups")
	ctx := context.Background()
	proxy := corruptingProxy(t, srv.Endpoint)
	awsEnv(t, "", "")
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	s, err := Open(ctx, "backups", Options{Endpoint: proxy})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, _ := randomFile(t, dir, 64<<10)
	_, err = s.PutFile(ctx, "snapshot_202401021530.db", src)
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("want ErrDamaged from a store that alters uploads, got %v", err)
	}
	if _, err := os.Stat(srv.ObjectPath("backups", "snapshot_202401021530.db")); !os.IsNotExist(err) {
		t.Fatalf("the damaged object was not deleted: %v", err)
	}
}

func TestE2EErrorsNameTheStore(t *testing.T) {
	srv := s3test.ForTest(t, "backups")
	ctx := context.Background()

	// Wrong secret.
	awsEnv(t, "", "")
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	s, err := Open(ctx, "backups", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(ctx)
	wantErr(t, "wrong secret", err, ErrAccessDenied, "backups", srv.Endpoint, "AWS_SECRET_ACCESS_KEY")
	_, err = s.Put(ctx, "x.db", strings.NewReader("x"), 1)
	wantErr(t, "wrong secret, put", err, ErrAccessDenied, "s3://backups/x.db", srv.Endpoint, "SignatureDoesNotMatch")

	// Unknown key id.
	t.Setenv("AWS_ACCESS_KEY_ID", "NOSUCHKEY")
	s, _ = Open(ctx, "backups", Options{})
	_, err = s.List(ctx, "")
	wantErr(t, "unknown key", err, ErrAccessDenied, "backups", srv.Endpoint, "access key")

	// No such bucket.
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	s, _ = Open(ctx, "nosuchbucket", Options{})
	_, err = s.List(ctx, "prod")
	wantErr(t, "no bucket", err, ErrNoSuchBucket, "nosuchbucket", srv.Endpoint, "NoSuchBucket")

	// Nothing listening.
	dead := deadEndpoint(t)
	s, _ = Open(ctx, "backups", Options{Endpoint: dead})
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = s.Check(cctx)
	wantErr(t, "unreachable", err, ErrUnreachable, "backups", dead, "connection refused")
}

func wantErr(t *testing.T, what string, err, kind error, parts ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: want %v, got %v", what, kind, err)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not say %q: %v", what, p, err)
		}
	}
	t.Logf("%s: %v", what, err)
}

type failingReader struct {
	left int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, errors.New("disk read error")
	}
	n := min(len(p), f.left)
	rand.Read(p[:n])
	f.left -= n
	return n, nil
}

// A source that fails halfway through a multipart upload leaves neither an
// object nor an open upload (whose parts the store would keep).
func TestE2EFailedMultipartIsAborted(t *testing.T) {
	srv := s3test.ForTest(t, "backups")
	ctx := context.Background()
	s := storeFor(t, srv, "backups", Options{PartSize: 5 << 20, Concurrency: 2})
	_, err := s.Put(ctx, "prod/snapshot_202401021530.db", &failingReader{left: 12 << 20}, 0)
	if err == nil || !strings.Contains(err.Error(), "disk read error") || !strings.Contains(err.Error(), "s3://backups/prod/snapshot_202401021530.db") {
		t.Fatalf("want the source's error naming the object, got %v", err)
	}
	if _, err := s.Head(ctx, "prod/snapshot_202401021530.db"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an object exists after a failed upload: %v", err)
	}
	ups, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left open", len(ups.Uploads))
	}
}
