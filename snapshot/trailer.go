package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// CheckTrailer reads path once. `etcdctl snapshot save` appends the sha256 of
// everything before it to the database; such a file's size modulo 512 is 32
// (bbolt pages are multiples of 512). hasTrailer says the file has that shape,
// ok that the trailer matches the content. sha256hex is the digest of the
// whole file, trailer included: what a copy of it on another host must hash to.
// A file copied from a member's member/snap/db has no trailer; restoring it
// needs etcd's --skip-hash-check.
func CheckTrailer(path string) (hasTrailer, ok bool, sha256hex string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, false, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, false, "", err
	}
	if !fi.Mode().IsRegular() {
		return false, false, "", fmt.Errorf("%s: not a regular file", path)
	}
	size := fi.Size()
	hasTrailer = size > sha256.Size && size%512 == sha256.Size
	body := size
	if hasTrailer {
		body = size - sha256.Size
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	if n, err := io.CopyBuffer(h, io.LimitReader(f, body), buf); err != nil {
		return false, false, "", fmt.Errorf("%s: read: %w", path, err)
	} else if n != body {
		return false, false, "", fmt.Errorf("%s: file shrank while being read (%d of %d bytes)", path, n, body)
	}
	if !hasTrailer {
		return false, false, hex.EncodeToString(h.Sum(nil)), nil
	}
	// The digest of the body is what the trailer must hold; writing the
	// trailer into the same hash afterwards gives the whole file's digest in
	// the same pass.
	bodySum := h.Sum(nil)
	trailer := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, trailer); err != nil {
		return false, false, "", fmt.Errorf("%s: read trailer: %w", path, err)
	}
	h.Write(trailer)
	return true, bytes.Equal(bodySum, trailer), hex.EncodeToString(h.Sum(nil)), nil
}

// FileSHA256 is the sha256 of the whole file, as sha256sum prints it.
func FileSHA256(path string) (string, error) {
	_, _, sum, err := CheckTrailer(path)
	return sum, err
}
