package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

func newIdentity(t *testing.T, dir, name string) (idPath, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idPath = filepath.Join(dir, name)
	if err := os.WriteFile(idPath, []byte("# test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return idPath, id.Recipient().String()
}

func seal(t *testing.T, plain []byte, r *Recipients) []byte {
	t.Helper()
	er, err := Encrypt(bytes.NewReader(plain), r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(er)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTripEachRecipientDecrypts(t *testing.T) {
	dir := t.TempDir()
	id1, r1 := newIdentity(t, dir, "one")
	id2, r2 := newIdentity(t, dir, "two")
	rf := filepath.Join(dir, "recipients")
	os.WriteFile(rf, []byte("# ops team\n\n"+r2+"\n"), 0o600)
	recs, err := ParseRecipients([]string{r1}, []string{rf})
	if err != nil {
		t.Fatal(err)
	}
	if recs.Len() != 2 {
		t.Fatalf("want 2 recipients, got %d", recs.Len())
	}
	plain := make([]byte, 300<<10+17) // several 64 KiB chunks and a partial one
	rand.Read(plain)
	ct := seal(t, plain, recs)
	if bytes.Contains(ct, plain[:64]) {
		t.Fatal("ciphertext contains plaintext")
	}
	for _, p := range []string{id1, id2} {
		ids, err := LoadIdentities(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckHeader(bytes.NewReader(ct[:min(len(ct), HeaderPeek)]), ids); err != nil {
			t.Fatalf("CheckHeader with %s: %v", p, err)
		}
		r, err := Decrypt(bytes.NewReader(ct), ids)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("decrypt with %s: plaintext differs", p)
		}
	}
}

func TestEncryptToWriter(t *testing.T) {
	dir := t.TempDir()
	idp, rk := newIdentity(t, dir, "id")
	recs, _ := ParseRecipients([]string{rk}, nil)
	var buf bytes.Buffer
	w, err := EncryptTo(&buf, recs)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello etcd")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ids, _ := LoadIdentities(idp)
	r, err := Decrypt(&buf, ids)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "hello etcd" {
		t.Fatalf("got %q", got)
	}
}

func TestWrongIdentityFailsBeforeAnyPlaintext(t *testing.T) {
	dir := t.TempDir()
	_, r1 := newIdentity(t, dir, "right")
	wrong, _ := newIdentity(t, dir, "wrong")
	recs, _ := ParseRecipients([]string{r1}, nil)
	ct := seal(t, []byte("secret"), recs)
	ids, err := LoadIdentities(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHeader(bytes.NewReader(ct), ids); !errors.Is(err, ErrWrongIdentity) || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("CheckHeader: want ErrWrongIdentity naming %s, got %v", wrong, err)
	}
	r, err := Decrypt(bytes.NewReader(ct), ids)
	if !errors.Is(err, ErrWrongIdentity) || r != nil {
		t.Fatalf("Decrypt: want ErrWrongIdentity and no reader, got %v", err)
	}
}

func TestMissingOrBadIdentityFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, path, content, want string
	}{
		{"none given", "", "", "no --age-identity given"},
		{"missing file", filepath.Join(dir, "absent"), "", "no such file"},
		{"empty", filepath.Join(dir, "empty"), "# nothing\n", "no identities"},
		{"public key in place of identity", filepath.Join(dir, "pub"), "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n", "unknown identity type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.content != "" {
				os.WriteFile(tc.path, []byte(tc.content), 0o600)
			}
			_, err := LoadIdentities(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestBadRecipients(t *testing.T) {
	dir := t.TempDir()
	id, _ := age.GenerateX25519Identity()
	priv := filepath.Join(dir, "priv")
	os.WriteFile(priv, []byte(id.String()+"\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nobody\n"), 0o600)
	for _, tc := range []struct {
		name        string
		keys, files []string
		want        string
	}{
		{"garbage key", []string{"hello"}, nil, "not an age"},
		{"private key given as recipient", []string{id.String()}, nil, "private key"},
		{"private key in recipients file", nil, []string{priv}, priv + ":1: this is an age private key"},
		{"empty recipients file", nil, []string{empty}, "no recipients"},
		{"missing recipients file", nil, []string{filepath.Join(dir, "absent")}, "no such file"},
		{"truncated age key", []string{id.Recipient().String()[:20]}, nil, "--age-recipient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecipients(tc.keys, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
			if strings.Contains(err.Error(), id.String()) {
				t.Fatal("error repeats a private key")
			}
		})
	}
	if r, err := ParseRecipients(nil, nil); r != nil || err != nil {
		t.Fatalf("no flags: want nil, nil; got %v, %v", r, err)
	}
}

func TestDamagedCiphertextIsRefused(t *testing.T) {
	dir := t.TempDir()
	idp, rk := newIdentity(t, dir, "id")
	recs, _ := ParseRecipients([]string{rk}, nil)
	ids, _ := LoadIdentities(idp)
	plain := make([]byte, 200<<10)
	rand.Read(plain)
	ct := seal(t, plain, recs)
	for _, tc := range []struct {
		name string
		ct   []byte
	}{
		{"byte flipped in the body", func() []byte { c := bytes.Clone(ct); c[len(c)/2] ^= 1; return c }()},
		{"truncated", ct[:len(ct)-1000]},
		{"last chunk dropped", ct[:len(ct)-(len(plain)%(64<<10))-16]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Decrypt(bytes.NewReader(tc.ct), ids)
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if err == nil {
				t.Fatal("damaged ciphertext decrypted without error")
			}
		})
	}
	if _, err := Decrypt(bytes.NewReader(plain), ids); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("plaintext: want ErrNotEncrypted, got %v", err)
	}
	if _, err := Decrypt(bytes.NewReader(nil), ids); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("empty: want ErrNotEncrypted, got %v", err)
	}
}

func TestSSHKeys(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	idp := filepath.Join(dir, "id_ed25519")
	os.WriteFile(idp, pem.EncodeToMemory(blk), 0o600)
	recs, err := ParseRecipients([]string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ct := seal(t, []byte("via ssh key"), recs)
	ids, err := LoadIdentities(idp)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decrypt(bytes.NewReader(ct), ids)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "via ssh key" {
		t.Fatalf("got %q", got)
	}
}

func TestEncryptedName(t *testing.T) {
	if !Encrypted("snapshot_20240101.db.age") || Encrypted("snapshot_20240101.db") {
		t.Fatal("Encrypted misjudges names")
	}
}
