package objects

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/secretbox"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// encodePod serializes a pod as the apiserver stores it: the protobuf
// serializer's `k8s\x00` envelope around the typed bytes.
func encodePod(t *testing.T) []byte {
	t.Helper()
	truth := true
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "net-test3", Namespace: "default", UID: "0b5e-uid",
			Labels:          map[string]string{"app": "net"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "net-7d", UID: "rs-uid", Controller: &truth}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	var buf bytes.Buffer
	if err := protoSerializer.Encode(pod, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeProtobuf(t *testing.T) {
	value := encodePod(t)
	if !bytes.HasPrefix(value, []byte("k8s\x00")) {
		t.Fatalf("encoded value does not start with the envelope: %q", value[:8])
	}
	o, err := Decode("/registry/pods/default/net-test3", value, 42)
	if err != nil {
		t.Fatal(err)
	}
	if o.APIVersion != "v1" || o.Kind != "Pod" || o.Name != "net-test3" || o.Namespace != "default" || o.UID != "0b5e-uid" || o.Format != "protobuf" {
		t.Fatalf("decoded %+v", o)
	}
	if len(o.OwnerReferences) != 1 || o.OwnerReferences[0].UID != "rs-uid" {
		t.Fatalf("owner references %+v", o.OwnerReferences)
	}
	pod, ok := o.Object.(*corev1.Pod)
	if !ok || pod.Spec.Containers[0].Image != "busybox" || pod.ResourceVersion != "42" {
		t.Fatalf("object %#v", o.Object)
	}
	y, err := o.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"apiVersion: v1\n", "kind: Pod\n", `resourceVersion: "42"`, "image: busybox", "uid: 0b5e-uid"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("YAML lacks %q:\n%s", want, y)
		}
	}
	j, err := o.JSON()
	if err != nil || !strings.Contains(string(j), `"resourceVersion": "42"`) {
		t.Errorf("JSON: %v\n%s", err, j)
	}
}

// A type this build does not know still shows its metadata.
func TestDecodeUnknownType(t *testing.T) {
	meta := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "g1", Namespace: "team-a", UID: "g-uid"}}
	raw, err := meta.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	unk := &runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: "future.k8s.io/v9", Kind: "Gadget"}, Raw: raw}
	b, err := unk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	o, err := Decode("/registry/gadgets/team-a/g1", append([]byte("k8s\x00"), b...), 7)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Partial || o.Kind != "Gadget" || o.APIVersion != "future.k8s.io/v9" || o.UID != "g-uid" {
		t.Fatalf("decoded %+v", o)
	}
}

func TestDecodeCustomResourceJSON(t *testing.T) {
	value := []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","namespace":"team-a","uid":"w-uid"},"spec":{"size":3}}` + "\n")
	o, err := Decode("/registry/example.com/widgets/team-a/w1", value, 9)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := o.YAML()
	if o.Kind != "Widget" || o.UID != "w-uid" || o.Format != "json" || !strings.Contains(string(y), "size: 3") || !strings.Contains(string(y), `resourceVersion: "9"`) {
		t.Fatalf("decoded %+v\n%s", o, y)
	}
}

func TestDecodeGarbage(t *testing.T) {
	if _, err := Decode("/registry/pods/default/x", []byte("hello"), 1); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Decode("/registry/pods/default/x", []byte("k8s\x00\xff\xff\xff"), 1); err == nil {
		t.Fatal("a broken envelope decoded")
	}
}

// Encryption, as the apiserver writes it (k8s.io/apiserver's value/encrypt
// transformers behind the prefix transformer).
var (
	cbcKey = bytes.Repeat([]byte{1}, 32)
	gcmKey = bytes.Repeat([]byte{2}, 16)
	boxKey = bytes.Repeat([]byte{3}, 32)
)

func encryptCBC(t *testing.T, keyName string, key, plain []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	out := make([]byte, aes.BlockSize+len(plain)+pad)
	rand.Read(out[:aes.BlockSize])
	copy(out[aes.BlockSize:], plain)
	copy(out[aes.BlockSize+len(plain):], bytes.Repeat([]byte{byte(pad)}, pad))
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], out[aes.BlockSize:])
	return append([]byte("k8s:enc:aescbc:v1:"+keyName+":"), out...)
}

func encryptGCM(t *testing.T, etcdKey string, plain []byte) []byte {
	block, _ := aes.NewCipher(gcmKey)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return append([]byte("k8s:enc:aesgcm:v1:g1:"), aead.Seal(nonce, nonce, plain, []byte(etcdKey))...)
}

func encryptBox(plain []byte) []byte {
	var nonce [24]byte
	var k [32]byte
	rand.Read(nonce[:])
	copy(k[:], boxKey)
	return append([]byte("k8s:enc:secretbox:v1:b1:"), secretbox.Seal(nonce[:], plain, &nonce, &k)...)
}

func writeConfig(t *testing.T) string {
	b64 := base64.StdEncoding.EncodeToString
	cfg := `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [events]
    providers:
      - identity: {}
  - resources: [secrets, configmaps]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: ` + b64(cbcKey) + `
      - aesgcm:
          keys:
            - name: g1
              secret: ` + b64(gcmKey) + `
      - identity: {}
  - resources: ["*.apps"]
    providers:
      - secretbox:
          keys:
            - name: b1
              secret: ` + b64(boxKey) + `
  - resources: ["*.*"]
    providers:
      - kms:
          apiVersion: v2
          name: vault
          endpoint: unix:///run/kms.sock
`
	p := filepath.Join(t.TempDir(), "enc.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEncryption(t *testing.T) {
	cfg, err := ParseEncryptionConfig(writeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for res, want := range map[string]string{"secrets": "aescbc key1", "events": "identity", "deployments.apps": "secretbox b1", "pods": "kms vault", "widgets.example.com": "kms vault"} {
		ps := cfg.ProvidersFor(res)
		got := ""
		if len(ps) > 0 {
			got = strings.TrimSpace(ps[0].Type + " " + strings.Join(ps[0].Keys, ","))
		}
		if got != want {
			t.Errorf("ProvidersFor(%s) first = %q, want %q", res, got, want)
		}
	}

	pod := encodePod(t)
	key := "/registry/pods/default/net-test3"
	for name, tc := range map[string]struct {
		value         []byte
		provider, key string
	}{
		"aescbc":    {encryptCBC(t, "key1", cbcKey, pod), "aescbc", "key1"},
		"aesgcm":    {encryptGCM(t, key, pod), "aesgcm", "g1"},
		"secretbox": {encryptBox(pod), "secretbox", "b1"},
	} {
		p, k, ok := EncryptedKeyOf(tc.value)
		if !ok || p != tc.provider || k != tc.key {
			t.Errorf("%s: EncryptedKeyOf = %q %q %v", name, p, k, ok)
		}
		o, err := Decode(key, tc.value, 5)
		if err != nil || o.Encryption == nil || o.Encryption.Decrypted || o.Object != nil {
			t.Errorf("%s without a config: %+v, %v", name, o, err)
		}
		if _, err := o.YAML(); err == nil || !strings.Contains(err.Error(), "--encryption-config") {
			t.Errorf("%s: YAML of an encrypted value: %v", name, err)
		}
		o, err = (&Decoder{Encryption: cfg}).Decode(key, tc.value, 5)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !o.Encryption.Decrypted || o.UID != "0b5e-uid" {
			t.Errorf("%s: decrypted %+v", name, o)
		}
	}
	if _, _, ok := EncryptedKeyOf(pod); ok {
		t.Error("a plain value reads as encrypted")
	}

	// AES-GCM binds the value to its key: moved to another key it does not open.
	if _, err := cfg.Decrypt("/registry/pods/default/other", encryptGCM(t, key, pod)); err == nil {
		t.Error("aesgcm value opened under another etcd key")
	}
	// A key of the right name with another secret fails, and says so.
	if _, err := cfg.Decrypt(key, encryptCBC(t, "key1", bytes.Repeat([]byte{9}, 32), pod)); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := cfg.Decrypt(key, encryptCBC(t, "key7", cbcKey, pod)); err == nil || !strings.Contains(err.Error(), `key "key7", which`) {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := cfg.Decrypt(key, []byte("k8s:enc:kms:v2:vault:xxxx")); err == nil || !strings.Contains(err.Error(), "KMS") {
		t.Errorf("kms: %v", err)
	}
	// A value written in the clear stays as it is.
	if b, err := cfg.Decrypt(key, pod); err != nil || !bytes.Equal(b, pod) {
		t.Errorf("plain value: %v", err)
	}
}

func TestParseEncryptionConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ body, want string }{
		"kind":   {"apiVersion: v1\nkind: Pod\n", "expected kind EncryptionConfiguration"},
		"yaml":   {"a: [\n", "not an EncryptionConfiguration"},
		"short":  {"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: k\n        secret: " + base64.StdEncoding.EncodeToString([]byte("short")) + "\n", ":6: aescbc key \"k\": aescbc needs a 16, 24 or 32-byte key"},
		"base64": {"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n      - name: k\n        secret: '!!'\n", "not base64"},
		"type":   {"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - rot13: {}\n", `unknown provider "rot13"`},
	} {
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte(tc.body), 0o600)
		_, err := ParseEncryptionConfig(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want it to name the file and say %q", name, err, tc.want)
		}
	}
}

// A deployment (apps/v1) round-trips too: types beyond core are in the scheme.
func TestDecodeDeployment(t *testing.T) {
	d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "front", Namespace: "web", UID: "d-uid"}}
	var buf bytes.Buffer
	if err := protoSerializer.Encode(d, &buf); err != nil {
		t.Fatal(err)
	}
	o, err := Decode("/registry/deployments/web/front", buf.Bytes(), 3)
	if err != nil || o.Kind != "Deployment" || o.APIVersion != "apps/v1" || o.UID != "d-uid" {
		t.Fatalf("%+v %v", o, err)
	}
}
