package atrest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// aescbc encrypts plain as kube-apiserver's aescbc provider stores it.
func aescbc(t *testing.T, keyName string, secret, plain []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(secret)
	if err != nil {
		t.Fatal(err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	body := append(append([]byte(nil), plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	out := make([]byte, aes.BlockSize+len(body))
	if _, err := rand.Read(out[:aes.BlockSize]); err != nil {
		t.Fatal(err)
	}
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], body)
	return append([]byte("k8s:enc:aescbc:v1:"+keyName+":"), out...)
}

func config(keys ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys:\n")
	for i := 0; i < len(keys); i += 2 {
		fmt.Fprintf(&b, "            - name: %s\n              secret: %s\n", keys[i], keys[i+1])
	}
	b.WriteString("      - identity: {}\n")
	return b.String()
}

func TestCheck(t *testing.T) {
	secret1, secret2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	b64 := base64.StdEncoding.EncodeToString
	u := &Usage{}
	u.Add("/registry/secrets/team-a/db", aescbc(t, "key1", secret1, []byte("k8s\x00secret")))
	u.Add("/registry/secrets/team-a/api", aescbc(t, "key1", secret1, []byte("k8s\x00other")))
	u.Add("/registry/configmaps/team-a/plain", []byte("k8s\x00plain"))
	uses := u.Uses()
	if len(uses) != 1 || uses[0].Count != 2 || uses[0].GroupResource != "secrets" || uses[0].Key != "key1" || uses[0].Example != "/registry/secrets/team-a/api" {
		t.Fatalf("uses: %+v", uses)
	}
	master := func(host, cfg string) *Master {
		t.Helper()
		if cfg == "" {
			return &Master{Host: host}
		}
		c, err := parseConfig(host, "/etc/kubernetes/ssl/encryption-config.yaml", []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		return &Master{Host: host, Path: "/etc/kubernetes/ssl/encryption-config.yaml", Config: c}
	}
	good := master("m1", config("key2", b64(secret2), "key1", b64(secret1)))
	if err := Check(uses, []*Master{good, good}, "the snapshot holds"); err != nil {
		t.Fatalf("every master holds key1: %v", err)
	}
	for _, tc := range []struct {
		name string
		m    *Master
		want string
	}{
		{"rotated away", master("m2", config("key2", b64(secret2))), `master m2: /etc/kubernetes/ssl/encryption-config.yaml has aescbc key2 for secrets, not aescbc key1`},
		{"same name, another secret", master("m2", config("key1", b64(secret2))), `holds a aescbc key "key1", but it does not decrypt the value`},
		{"no config", master("m2", ""), "master m2: kube-apiserver has no --encryption-provider-config"},
	} {
		err := Check(uses, []*Master{good, tc.m}, "the snapshot holds")
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		for _, want := range []string{`the snapshot holds 2 secrets encrypted with aescbc key "key1"`, tc.want} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error lacks %q:\n%v", tc.name, want, err)
			}
		}
		if strings.Contains(err.Error(), "master m1") {
			t.Errorf("%s: names the master that holds the key:\n%v", tc.name, err)
		}
	}
	if _, err := parseConfig("m3", "/etc/enc.yaml", []byte("kind: Nope\n")); err == nil || !strings.Contains(err.Error(), "host m3: /etc/enc.yaml") || strings.Contains(err.Error(), "ezrestore-encryption-") {
		t.Fatalf("a file that is no EncryptionConfiguration: %v; want an error naming the host's file", err)
	}
}
