package lab

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// EncryptionConfigPath is the apiservers' EncryptionConfiguration
// (--encryption-provider-config), the same on every master: Secrets are
// written aescbc-encrypted with EncryptionKeyName, so the values a lab's
// etcd and snapshots hold are the encrypted ones a real cluster has.
const (
	EncryptionConfigPath = CADir + "/encryption-config.yaml"
	EncryptionKeyName    = "lab-key-1"
)

// EncryptionConfig is an EncryptionConfiguration writing Secrets with
// aescbc key name (secret: 32 bytes), still reading plain ones (identity).
func EncryptionConfig(name string, secret []byte) []byte {
	return fmt.Appendf(nil, `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - aescbc:
          keys:
            - name: %s
              secret: %s
      - identity: {}
`, name, base64.StdEncoding.EncodeToString(secret))
}

// newEncryptionConfig is the lab's EncryptionConfig, with a fresh key.
func newEncryptionConfig() ([]byte, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return EncryptionConfig(EncryptionKeyName, secret), nil
}
