package objects

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
	"gopkg.in/yaml.v3"
)

// encPrefix opens every value the apiserver encrypted at rest:
// k8s:enc:<provider>:<version>:<key name>:<data>.
const encPrefix = "k8s:enc:"

// EncryptedKeyOf says whether value is encrypted at rest and, if so, by which
// provider (aescbc, aesgcm, secretbox, kms) with which key (for kms, the
// provider's name).
func EncryptedKeyOf(value []byte) (provider, key string, ok bool) {
	if !bytes.HasPrefix(value, []byte(encPrefix)) {
		return "", "", false
	}
	rest := value[len(encPrefix):]
	if len(rest) > 512 { // a prefix is short; the data after it may hold anything
		rest = rest[:512]
	}
	f := bytes.SplitN(rest, []byte(":"), 4)
	if len(f) < 4 {
		return "", "", false
	}
	return string(f[0]), string(f[2]), true
}

// EncryptionConfig is the apiserver's EncryptionConfiguration
// (--encryption-provider-config), read for its providers and keys.
type EncryptionConfig struct {
	Path  string
	Rules []EncryptionRule
}

// EncryptionRule is one entry of resources: which resources, which providers.
type EncryptionRule struct {
	// Resources as written: secrets, deployments.apps, *.apps, *.*, "*." (the core group).
	Resources []string
	// Providers in order: the first writes, all read.
	Providers []EncryptionProvider
}

// EncryptionProvider is one provider of a rule.
type EncryptionProvider struct {
	// Type is aescbc, aesgcm, secretbox, identity or kms.
	Type string
	// Keys are the key names in order (the first encrypts); for kms the provider's name.
	Keys []string
	// Line is where the provider starts in the file.
	Line    int
	secrets [][]byte
}

// prefix is the value prefix the provider writes with its i-th key.
func (p EncryptionProvider) prefix(i int) string {
	return encPrefix + p.Type + ":v1:" + p.Keys[i] + ":"
}

// ParseEncryptionConfig reads an EncryptionConfiguration file. Key secrets
// are checked (base64, the length each cipher needs); errors name the file
// and line.
func ParseEncryptionConfig(path string) (*EncryptionConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encryption config: %w", err)
	}
	return ParseEncryptionConfigData(path, data)
}

// ParseEncryptionConfigData parses an EncryptionConfiguration already read
// (from a master, over SSH); path names it in the config and in errors.
func ParseEncryptionConfigData(path string, data []byte) (*EncryptionConfig, error) {
	var doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Resources  []struct {
			Resources []string    `yaml:"resources"`
			Providers []yaml.Node `yaml:"providers"`
		} `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not an EncryptionConfiguration: %w", path, err)
	}
	if doc.Kind != "EncryptionConfiguration" || doc.APIVersion != "apiserver.config.k8s.io/v1" {
		return nil, fmt.Errorf("%s: kind %q apiVersion %q: expected kind EncryptionConfiguration, apiVersion apiserver.config.k8s.io/v1 (the file kube-apiserver's --encryption-provider-config names)",
			path, doc.Kind, doc.APIVersion)
	}
	c := &EncryptionConfig{Path: path}
	for _, r := range doc.Resources {
		rule := EncryptionRule{}
		for _, res := range r.Resources {
			rule.Resources = append(rule.Resources, strings.ToLower(res))
		}
		for i := range r.Providers {
			p, err := parseProvider(&r.Providers[i])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, r.Providers[i].Line, err)
			}
			rule.Providers = append(rule.Providers, p)
		}
		c.Rules = append(c.Rules, rule)
	}
	if len(c.Rules) == 0 {
		return nil, fmt.Errorf("%s: no resources: an EncryptionConfiguration lists resources and their providers", path)
	}
	return c, nil
}

func parseProvider(n *yaml.Node) (EncryptionProvider, error) {
	var m map[string]struct {
		Name string `yaml:"name"`
		Keys []struct {
			Name   string `yaml:"name"`
			Secret string `yaml:"secret"`
		} `yaml:"keys"`
	}
	if err := n.Decode(&m); err != nil {
		return EncryptionProvider{}, fmt.Errorf("provider: %w", err)
	}
	if len(m) != 1 {
		return EncryptionProvider{}, fmt.Errorf("a provider names exactly one of aescbc, aesgcm, secretbox, identity, kms; this one names %d", len(m))
	}
	p := EncryptionProvider{Line: n.Line}
	for typ, body := range m {
		p.Type = typ
		switch typ {
		case "identity":
		case "kms":
			p.Keys = []string{body.Name}
		case "aescbc", "aesgcm", "secretbox":
			if len(body.Keys) == 0 {
				return p, fmt.Errorf("%s: no keys", typ)
			}
			for _, k := range body.Keys {
				secret, err := base64.StdEncoding.DecodeString(k.Secret)
				if err != nil {
					return p, fmt.Errorf("%s key %q: the secret is not base64: %w", typ, k.Name, err)
				}
				if err := checkKeySize(typ, len(secret)); err != nil {
					return p, fmt.Errorf("%s key %q: %w", typ, k.Name, err)
				}
				p.Keys = append(p.Keys, k.Name)
				p.secrets = append(p.secrets, secret)
			}
		default:
			return p, fmt.Errorf("unknown provider %q (aescbc, aesgcm, secretbox, identity, kms)", typ)
		}
	}
	return p, nil
}

func checkKeySize(typ string, n int) error {
	switch {
	case typ == "secretbox" && n != 32:
		return fmt.Errorf("secretbox needs a 32-byte key, this one has %d", n)
	case typ != "secretbox" && n != 16 && n != 24 && n != 32:
		return fmt.Errorf("%s needs a 16, 24 or 32-byte key, this one has %d", typ, n)
	}
	return nil
}

// ProvidersFor returns the providers of the first rule that covers
// groupResource (secrets, deployments.apps), as the apiserver picks them:
// an exact name, then <group>'s wildcard (*.apps, "*." for the core group),
// then *.*. nil when no rule covers it: the apiserver writes it in the clear.
func (c *EncryptionConfig) ProvidersFor(groupResource string) []EncryptionProvider {
	groupResource = strings.ToLower(groupResource)
	group := ""
	if _, g, ok := strings.Cut(groupResource, "."); ok {
		group = g
	}
	for _, r := range c.Rules {
		for _, res := range r.Resources {
			if res == groupResource || res == "*."+group || res == "*.*" {
				return r.Providers
			}
		}
	}
	return nil
}

// Decrypt returns the plain value of an etcd key's value: value itself when
// it is not encrypted, else decrypted with the provider and key its prefix
// names. An error says which provider and key it needed and why it failed.
func (c *EncryptionConfig) Decrypt(key string, value []byte) ([]byte, error) {
	provider, keyName, ok := EncryptedKeyOf(value)
	if !ok {
		return value, nil
	}
	if provider == "kms" {
		return nil, fmt.Errorf("%s: encrypted by KMS provider %q: only the KMS plugin can decrypt it, ezrestore cannot", key, keyName)
	}
	found := false
	for _, r := range c.Rules {
		for _, p := range r.Providers {
			for i := range p.Keys {
				prefix := p.prefix(i)
				if !bytes.HasPrefix(value, []byte(prefix)) {
					continue
				}
				found = true
				// Two keys may share a name in different rules: a failure tries the others.
				if plain, err := decrypt(p.Type, p.secrets[i], value[len(prefix):], []byte(key)); err == nil {
					return plain, nil
				}
			}
		}
	}
	if found {
		return nil, fmt.Errorf("%s: encrypted with %s key %q, and the key of that name in %s does not decrypt it (a different secret?)", key, provider, keyName, c.Path)
	}
	return nil, fmt.Errorf("%s: encrypted with %s key %q, which %s does not hold (it names %s)", key, provider, keyName, c.Path, strings.Join(c.keyNames(), ", "))
}

func (c *EncryptionConfig) keyNames() []string {
	var out []string
	for _, r := range c.Rules {
		for _, p := range r.Providers {
			for _, k := range p.Keys {
				out = append(out, p.Type+" "+k)
			}
		}
	}
	if len(out) == 0 {
		return []string{"no keys"}
	}
	return out
}

// decrypt undoes one provider's transformation, as the apiserver stores it:
// aescbc: a 16-byte IV, then AES-CBC of the PKCS#7-padded value;
// aesgcm: a 12-byte nonce, then AES-GCM sealed with the etcd key as additional data;
// secretbox: a 24-byte nonce, then NaCl secretbox.
func decrypt(typ string, secret, data, etcdKey []byte) ([]byte, error) {
	switch typ {
	case "aescbc":
		block, err := aes.NewCipher(secret)
		if err != nil {
			return nil, err
		}
		if len(data) < 2*aes.BlockSize || len(data)%aes.BlockSize != 0 {
			return nil, errors.New("aescbc: data is not an IV and whole blocks")
		}
		iv, body := data[:aes.BlockSize], data[aes.BlockSize:]
		out := make([]byte, len(body))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, body)
		pad := int(out[len(out)-1])
		if pad == 0 || pad > aes.BlockSize || pad > len(out) || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
			return nil, errors.New("aescbc: bad padding (wrong key?)")
		}
		return out[:len(out)-pad], nil
	case "aesgcm":
		block, err := aes.NewCipher(secret)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		if len(data) < aead.NonceSize() {
			return nil, errors.New("aesgcm: data shorter than a nonce")
		}
		return aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], etcdKey)
	case "secretbox":
		var k [32]byte
		var nonce [24]byte
		if len(data) < len(nonce)+secretbox.Overhead {
			return nil, errors.New("secretbox: data shorter than a nonce")
		}
		copy(k[:], secret)
		copy(nonce[:], data)
		out, ok := secretbox.Open(nil, data[len(nonce):], &nonce, &k)
		if !ok {
			return nil, errors.New("secretbox: does not open (wrong key?)")
		}
		return out, nil
	}
	return nil, fmt.Errorf("provider %s cannot decrypt", typ)
}
