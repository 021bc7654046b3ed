package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/ezrestore/ezrestore/inventory"
)

// defaultKeyNames are tried from ~/.ssh when they exist, as ssh(1) does.
var defaultKeyNames = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// authKeys is what we can offer a host: signers in the order to try them,
// what each is (for the error when all fail), and the encrypted key files
// we could not use.
type authKeys struct {
	signers   []ssh.Signer
	offered   []OfferedKey
	encrypted []string
	agentConn net.Conn // closed once the handshake is over
}

func (a *authKeys) close() {
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}

// loadAuthKeys gathers the keys of route r: its key files in order (an
// encrypted one is used through the agent when the agent holds it), then
// the agent's other keys unless IdentitiesOnly. Key files the inventory or
// the command line name must be readable; ssh_config's and the default
// ones are skipped when absent, as ssh(1) does.
func loadAuthKeys(r *Route) (*authKeys, error) {
	a := &authKeys{}
	seen := map[string]bool{}
	add := func(s ssh.Signer, k OfferedKey) {
		id := string(s.PublicKey().Marshal())
		if !seen[id] {
			seen[id] = true
			k.Type, k.SHA256 = s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey())
			a.signers = append(a.signers, s)
			a.offered = append(a.offered, k)
		}
	}

	agentKeys := map[string]ssh.Signer{}
	var agentOrder []ssh.Signer
	agentComment := map[string]string{}
	if sock := r.Agent.Value; sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			a.agentConn = conn
			ac := agent.NewClient(conn)
			if ss, err := ac.Signers(); err == nil {
				agentOrder = ss
				for _, s := range ss {
					agentKeys[string(s.PublicKey().Marshal())] = s
				}
			}
			if list, err := ac.List(); err == nil {
				for _, k := range list {
					agentComment[string(k.Marshal())] = k.Comment
				}
			}
		}
		// An agent that cannot be reached is not an error: files may do.
	}

	for _, f := range r.Keys {
		optional := r.optionalKey(f)
		pem, err := os.ReadFile(f.Value)
		if err != nil {
			if optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			a.close()
			return nil, &AuthError{msg: fmt.Sprintf("private key %s (%s): %v", f.Value, f.From, err)}
		}
		s, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			// Usable only through the agent, if it holds the key.
			if missing.PublicKey != nil {
				if as, ok := agentKeys[string(missing.PublicKey.Marshal())]; ok {
					add(as, OfferedKey{File: f.Value, Comment: "via the agent"})
					continue
				}
			}
			a.encrypted = append(a.encrypted, f.Value)
		case err != nil:
			if optional {
				continue // e.g. a key format we do not read; ssh(1) may still use it
			}
			a.close()
			return nil, &AuthError{msg: fmt.Sprintf("private key %s (%s): %v", f.Value, f.From, err)}
		default:
			add(s, OfferedKey{File: f.Value})
		}
	}
	if !r.IdentitiesOnly.Value {
		for _, s := range agentOrder {
			add(s, OfferedKey{Comment: agentComment[string(s.PublicKey().Marshal())]})
		}
	}
	if len(a.signers) == 0 {
		a.close()
		return nil, a.noKeyError(r)
	}
	return a, nil
}

func (a *authKeys) noKeyError(r *Route) error {
	if len(a.encrypted) > 0 {
		how := "load it into ssh-agent (eval $(ssh-agent); ssh-add " + Quote(a.encrypted[0]) + ")"
		if r.Agent.Value == "" {
			how = "start ssh-agent, ssh-add it and let ezrestore use the agent"
		}
		return &AuthError{User: r.User.Value, Encrypted: a.encrypted, msg: fmt.Sprintf("no usable SSH key: %s is passphrase-protected and no ssh-agent holds it; %s, or use a key without a passphrase",
			strings.Join(a.encrypted, ", "), how)}
	}
	return &AuthError{User: r.User.Value, msg: "no SSH key to offer: set ansible_ssh_private_key_file, pass --private-key, name an IdentityFile in ~/.ssh/config, put a key in ~/.ssh (id_ed25519, id_ecdsa, id_rsa) or run ssh-agent"}
}

// authFailed is the error of a host that accepted none of the keys.
func (a *authKeys) authFailed(r *Route) error {
	var b strings.Builder
	fmt.Fprintf(&b, "authentication failed: the host accepted none of the %d key(s) offered for user %s:", len(a.signers), r.User.Value)
	for _, k := range a.offered {
		fmt.Fprintf(&b, "\n    %s", k)
	}
	if len(a.encrypted) > 0 {
		fmt.Fprintf(&b, "\n  (passphrase-protected keys not in the agent were not tried: %s)", strings.Join(a.encrypted, ", "))
	}
	return &AuthError{User: r.User.Value, Offered: a.offered, Encrypted: a.encrypted, msg: b.String()}
}

// expandHome is the inventory's: one reading of ~ for every path.
func expandHome(p string) string { return inventory.ExpandHome(p) }
