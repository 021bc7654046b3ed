package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyChecker verifies one host's key against the known_hosts files and,
// when allowed, records the key of a host seen for the first time.
type hostKeyChecker struct {
	files     []string // as given by the caller; files[0] receives new keys
	acceptNew bool
	hostport  string // address:port as dialled, the name known_hosts records
	known     []knownhosts.KnownKey
	callback  ssh.HostKeyCallback // nil when no file exists yet
	// failure is the callback's refusal, kept because the ssh library
	// wraps it; Dial reports it as is.
	failure error
}

// appendMu serializes appends to known_hosts files within this process, so a
// pool dialling many new hosts at once writes whole lines.
var appendMu sync.Mutex

func newHostKeyChecker(files []string, acceptNew bool, hostport string) (*hostKeyChecker, error) {
	if len(files) == 0 {
		return nil, errors.New("no known_hosts file given: host keys cannot be verified")
	}
	c := &hostKeyChecker{files: files, acceptNew: acceptNew, hostport: hostport}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the existing files and the keys they record for this host.
func (c *hostKeyChecker) load() error {
	var existing []string
	for _, f := range c.files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("known_hosts: %w", err)
		}
	}
	c.callback, c.known = nil, nil
	if len(existing) == 0 {
		return nil
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return fmt.Errorf("read known_hosts: %w", err)
	}
	c.callback = cb
	c.known = knownKeysFor(cb, c.hostport)
	return nil
}

// knownKeysFor asks the callback about a throwaway key: the mismatch it
// reports lists every key recorded for hostport, with file and line.
func knownKeysFor(cb ssh.HostKeyCallback, hostport string) []knownhosts.KnownKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil
	}
	remote := &net.TCPAddr{IP: net.IPv4(0, 0, 0, 0), Port: 22}
	var keyErr *knownhosts.KeyError
	if errors.As(cb(hostport, remote, probe.PublicKey()), &keyErr) {
		return keyErr.Want
	}
	return nil
}

// hostKeyAlgorithms are the algorithms to ask the server for: those of the
// recorded keys, so a server with several keys offers the one we know. Nil
// (library default) when nothing is recorded.
func (c *hostKeyChecker) hostKeyAlgorithms() []string {
	return algorithmsFor(c.known)
}

func algorithmsFor(known []knownhosts.KnownKey) []string {
	var algs []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algs = append(algs, a)
		}
	}
	for _, k := range known {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			// An "ssh-rsa" key is used with the SHA-2 signatures; plain
			// ssh-rsa (SHA-1) is the last resort of old servers.
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
			add(ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algs
}

// check is the ssh.HostKeyCallback.
func (c *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	var err error
	if c.callback != nil {
		err = c.callback(c.hostport, remote, key)
		if err == nil {
			return nil
		}
	} else {
		err = &knownhosts.KeyError{}
	}
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(err, &revoked):
		c.failure = &HostKeyError{Kind: KindHostKeyRevoked, HostPort: c.hostport, Offered: key, Want: []knownhosts.KnownKey{revoked.Revoked},
			msg: fmt.Sprintf("host key %s %s is marked @revoked in %s line %d: refusing to connect",
				key.Type(), ssh.FingerprintSHA256(key), revoked.Revoked.Filename, revoked.Revoked.Line)}
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		c.failure = changedKeyError(c.hostport, key, keyErr.Want)
	case errors.As(err, &keyErr):
		if !c.acceptNew {
			c.failure = unknownHostError(c.hostport, key, c.files[0])
			break
		}
		c.failure = c.record(key)
	default:
		c.failure = err
	}
	return c.failure
}

// record appends key for this host to the first known_hosts file, unless a
// concurrent dial has recorded a key for the host meanwhile.
func (c *hostKeyChecker) record(key ssh.PublicKey) error {
	appendMu.Lock()
	defer appendMu.Unlock()
	if err := c.load(); err != nil {
		return err
	}
	if c.callback != nil {
		err := c.callback(c.hostport, &net.TCPAddr{IP: net.IPv4zero}, key)
		var keyErr *knownhosts.KeyError
		if err == nil {
			return nil
		}
		if errors.As(err, &keyErr) && len(keyErr.Want) > 0 {
			return changedKeyError(c.hostport, key, keyErr.Want)
		}
	}
	file := c.files[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(c.hostport)}, key) + "\n"
	// Start on a new line if the file does not end with one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if r, err := os.Open(file); err == nil {
			if _, err := r.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
				line = "\n" + line
			}
			r.Close()
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("record host key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	return nil
}

// unknownHostError says how to trust a host seen for the first time.
func unknownHostError(hostport string, key ssh.PublicKey, file string) error {
	host, port, _ := net.SplitHostPort(hostport)
	scan := "ssh-keyscan"
	if port != "22" {
		scan += " -p " + Quote(port)
	}
	return &HostKeyError{Kind: KindHostKeyUnknown, HostPort: hostport, Offered: key, File: file, msg: fmt.Sprintf("host key %s %s is not known: no line for %s in the known_hosts files.\n"+
		"  Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then either\n"+
		"    %s %s >> %s\n"+
		"  or run again with --accept-new-host-keys to record it on first use",
		key.Type(), ssh.FingerprintSHA256(key), knownhosts.Normalize(hostport),
		keyFileKind(key.Type()), scan, Quote(host), Quote(file))}
}

// changedKeyError is the loud refusal of a host whose key is not the recorded one.
func changedKeyError(hostport string, key ssh.PublicKey, want []knownhosts.KnownKey) error {
	var b strings.Builder
	fmt.Fprintf(&b, "HOST KEY CHANGED for %s: refusing to connect.\n", knownhosts.Normalize(hostport))
	fmt.Fprintf(&b, "  The host offered  %s %s\n", key.Type(), ssh.FingerprintSHA256(key))
	for _, w := range want {
		fmt.Fprintf(&b, "  but %s line %d records %s %s\n", w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key))
	}
	b.WriteString("  Someone may be intercepting the connection, or the host was reinstalled and has new keys.\n")
	b.WriteString("  Verify the new key on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub); only then remove the old line:\n")
	for _, f := range uniqueFiles(want) {
		fmt.Fprintf(&b, "    ssh-keygen -R %s -f %s\n", Quote(knownhosts.Normalize(hostport)), Quote(f))
	}
	b.WriteString("  and connect again (--accept-new-host-keys records the new key; it never replaces a recorded one)")
	return &HostKeyError{Kind: KindHostKeyChanged, HostPort: hostport, Offered: key, Want: want, msg: b.String()}
}

// noCommonAlgorithmError explains a server that offers none of the recorded key types.
func noCommonAlgorithmError(hostport string, want []knownhosts.KnownKey, cause error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "HOST KEY CHANGED for %s: the host offers none of the recorded key types (%v).\n", knownhosts.Normalize(hostport), cause)
	for _, w := range want {
		fmt.Fprintf(&b, "  %s line %d records %s %s\n", w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key))
	}
	b.WriteString("  The host may have been reinstalled, or someone may be intercepting the connection.\n")
	b.WriteString("  Verify the host's keys on its console; only then remove the old line:\n")
	for _, f := range uniqueFiles(want) {
		fmt.Fprintf(&b, "    ssh-keygen -R %s -f %s\n", Quote(knownhosts.Normalize(hostport)), Quote(f))
	}
	b.WriteString("  and connect again")
	return &HostKeyError{Kind: KindHostKeyChanged, HostPort: hostport, Want: want, cause: cause, msg: b.String()}
}

func uniqueFiles(want []knownhosts.KnownKey) []string {
	var files []string
	seen := map[string]bool{}
	for _, w := range want {
		if !seen[w.Filename] {
			seen[w.Filename] = true
			files = append(files, w.Filename)
		}
	}
	return files
}

// keyFileKind names the /etc/ssh/ssh_host_<kind>_key file for a key type.
func keyFileKind(keyType string) string {
	switch keyType {
	case ssh.KeyAlgoED25519:
		return "ed25519"
	case ssh.KeyAlgoRSA:
		return "rsa"
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return "ecdsa"
	}
	return "*"
}
