// Package seal encrypts snapshots before they leave the bastion and decrypts
// them on the way back, with age (filippo.io/age): a snapshot holds every
// Secret of the cluster, in the clear unless the apiserver encrypts at rest.
//
// Recipients are age public keys (age1...) or SSH public keys (ssh-ed25519,
// ssh-rsa), given one by one (--age-recipient) or in files
// (--age-recipients-file, one a line, # comments). Identities are read from
// an age identity file (AGE-SECRET-KEY-1...) or an unencrypted SSH private
// key (--age-identity). Everything streams: memory does not grow with the
// snapshot.
package seal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
)

// Suffix is appended to the name of an encrypted snapshot.
const Suffix = ".age"

// Encrypted reports whether name is the name of an encrypted snapshot.
func Encrypted(name string) bool { return strings.HasSuffix(name, Suffix) }

// Recipients are the keys a snapshot is encrypted to; any one of their
// identities can decrypt it.
type Recipients struct {
	list []age.Recipient
	// Names are the keys as given (public keys only), for messages.
	Names []string
}

// Len is the number of recipients.
func (r *Recipients) Len() int {
	if r == nil {
		return 0
	}
	return len(r.list)
}

// ParseRecipients reads the --age-recipient keys and the
// --age-recipients-file files. It returns nil and no error when both are
// empty (no encryption asked for).
func ParseRecipients(keys, files []string) (*Recipients, error) {
	if len(keys) == 0 && len(files) == 0 {
		return nil, nil
	}
	r := &Recipients{}
	for i, k := range keys {
		rec, err := parseRecipient(strings.TrimSpace(k))
		if err != nil {
			// The key is not repeated: it may be a private key given by mistake.
			return nil, fmt.Errorf("--age-recipient (the %s): %w", ordinal(i+1), err)
		}
		r.list = append(r.list, rec)
		r.Names = append(r.Names, strings.TrimSpace(k))
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--age-recipients-file: %w", err)
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for line := 1; sc.Scan(); line++ {
			s := strings.TrimSpace(sc.Text())
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			rec, err := parseRecipient(s)
			if err != nil {
				// The line is not quoted: it may be a private key put in the wrong file.
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			r.list = append(r.list, rec)
			r.Names = append(r.Names, s)
			n++
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no recipients in the file (one age1... or ssh-... public key a line)", path)
		}
	}
	return r, nil
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "first"
	case 2:
		return "second"
	case 3:
		return "third"
	}
	return fmt.Sprintf("%dth", n)
}

func parseRecipient(s string) (age.Recipient, error) {
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		return age.ParseHybridRecipient(s)
	case strings.HasPrefix(s, "age1"):
		return age.ParseX25519Recipient(s)
	case strings.HasPrefix(s, "ssh-"):
		return agessh.ParseRecipient(s)
	case strings.HasPrefix(s, "AGE-SECRET-KEY-"):
		return nil, errors.New("this is an age private key; give its public key (age-keygen -y FILE)")
	default:
		return nil, errors.New("not an age (age1...) or SSH (ssh-ed25519, ssh-rsa) public key")
	}
}

// Identities are the private keys that decrypt a snapshot.
type Identities struct {
	list []age.Identity
	// Path is the file they were read from.
	Path string
}

// LoadIdentities reads the --age-identity file: age identities, one a line,
// or an unencrypted SSH private key.
func LoadIdentities(path string) (*Identities, error) {
	if path == "" {
		return nil, errors.New("no --age-identity given: an encrypted snapshot needs the age identity file it was encrypted to")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--age-identity: %w", err)
	}
	var ids []age.Identity
	if bytes.Contains(data, []byte("-----BEGIN")) {
		id, err := agessh.ParseIdentity(data)
		if err != nil {
			return nil, fmt.Errorf("--age-identity %s: SSH private key: %w (passphrase-protected keys are not supported; use an age identity)", path, err)
		}
		ids = []age.Identity{id}
	} else {
		ids, err = age.ParseIdentities(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("--age-identity %s: %w", path, err)
		}
	}
	return &Identities{list: ids, Path: path}, nil
}

// Encrypt returns a reader of src encrypted to r. Reading it streams src
// through age; nothing is buffered beyond one 64 KiB chunk.
func Encrypt(src io.Reader, r *Recipients) (io.Reader, error) {
	if r.Len() == 0 {
		return nil, errors.New("encrypt: no recipients")
	}
	return age.EncryptReader(src, r.list...)
}

// EncryptTo returns a writer that encrypts to r into dst; Close it to write
// the last chunk.
func EncryptTo(dst io.Writer, r *Recipients) (io.WriteCloser, error) {
	if r.Len() == 0 {
		return nil, errors.New("encrypt: no recipients")
	}
	return age.Encrypt(dst, r.list...)
}

// ErrWrongIdentity is returned (wrapped) when none of the identities can
// decrypt a file.
var ErrWrongIdentity = errors.New("the age identity does not decrypt this snapshot")

// ErrNotEncrypted is returned (wrapped) when a file is not age-encrypted.
var ErrNotEncrypted = errors.New("not an age-encrypted file")

// Decrypt returns a reader of the plaintext of the age file src. It reads
// and unlocks the header first, so a wrong identity fails here, before any
// plaintext is produced; a damaged or truncated body fails a later Read.
func Decrypt(src io.Reader, ids *Identities) (io.Reader, error) {
	if ids == nil || len(ids.list) == 0 {
		return nil, errors.New("decrypt: no age identity given (--age-identity FILE)")
	}
	br := bufio.NewReader(src)
	if err := checkMagic(br); err != nil {
		return nil, err
	}
	r, err := age.Decrypt(br, ids.list...)
	if err != nil {
		return nil, explain(err, ids)
	}
	return r, nil
}

// CheckHeader reads an age header from r (the first bytes of a file are
// enough: a header is a few hundred bytes per recipient) and reports whether
// ids can decrypt the file, without reading its body: a restore asks this of
// the stored object before downloading it or touching any host.
func CheckHeader(r io.Reader, ids *Identities) error {
	if ids == nil || len(ids.list) == 0 {
		return errors.New("no age identity given (--age-identity FILE)")
	}
	br := bufio.NewReader(r)
	if err := checkMagic(br); err != nil {
		return err
	}
	hdr, err := age.ExtractHeader(br)
	if err != nil {
		return fmt.Errorf("age header: %w", err)
	}
	if _, err := age.DecryptHeader(hdr, ids.list...); err != nil {
		return explain(err, ids)
	}
	return nil
}

// HeaderPeek is how many leading bytes of a file CheckHeader needs at most
// for a handful of recipients.
const HeaderPeek = 16 << 10

func checkMagic(br *bufio.Reader) error {
	const magic = "age-encryption.org/"
	p, _ := br.Peek(len(magic))
	if string(p) != magic {
		if bytes.HasPrefix([]byte(magic), p) || len(p) == 0 {
			return fmt.Errorf("%w: the file is empty or cut short", ErrNotEncrypted)
		}
		return ErrNotEncrypted
	}
	return nil
}

func explain(err error, ids *Identities) error {
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return fmt.Errorf("%w: none of the keys in %s is among its recipients (%v); give the identity matching the --age-recipient used for the backup", ErrWrongIdentity, ids.Path, err)
	}
	return fmt.Errorf("age: %w", err)
}
