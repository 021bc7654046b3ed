package transport

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/ezrestore/ezrestore/inventory"
)

// defaultKeyNames are tried from ~/.ssh when they exist, as ssh(1) does.
var defaultKeyNames = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// authKeys is what we can offer a host: signers in the order to try them, and
// the encrypted key files we could not use (for the error when all fail).
type authKeys struct {
	signers   []ssh.Signer
	encrypted []string
	agentConn net.Conn // closed once the handshake is over
}

func (a *authKeys) close() {
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}

// loadAuthKeys gathers keys: the host's own key file, then
// Options.IdentityFiles, then the agent's keys, then ~/.ssh defaults.
// Explicitly named files must be readable; default ones are skipped when absent.
func loadAuthKeys(h *inventory.Host, opts Options) (*authKeys, error) {
	a := &authKeys{}
	seen := map[string]bool{}
	add := func(s ssh.Signer) {
		k := string(s.PublicKey().Marshal())
		if !seen[k] {
			seen[k] = true
			a.signers = append(a.signers, s)
		}
	}

	var agentKeys []ssh.Signer
	var agentPub = map[string]bool{}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && !opts.NoAgent {
		if conn, err := net.Dial("unix", sock); err == nil {
			a.agentConn = conn
			if ss, err := agent.NewClient(conn).Signers(); err == nil {
				agentKeys = ss
				for _, s := range ss {
					agentPub[string(s.PublicKey().Marshal())] = true
				}
			}
		}
		// An agent that cannot be reached is not an error: files may do.
	}

	type keyFile struct {
		path     string
		explicit bool
	}
	var files []keyFile
	if h.KeyFile != "" {
		files = append(files, keyFile{expandHome(h.KeyFile), true})
	}
	for _, f := range opts.IdentityFiles {
		files = append(files, keyFile{expandHome(f), true})
	}
	var defaults []keyFile
	if home, err := os.UserHomeDir(); err == nil {
		for _, n := range defaultKeyNames {
			defaults = append(defaults, keyFile{filepath.Join(home, ".ssh", n), false})
		}
	}

	loadFiles := func(list []keyFile) error {
		for _, f := range list {
			pem, err := os.ReadFile(f.path)
			if err != nil {
				if !f.explicit && errors.Is(err, os.ErrNotExist) {
					continue
				}
				return fmt.Errorf("private key: %w", err)
			}
			s, err := ssh.ParsePrivateKey(pem)
			var missing *ssh.PassphraseMissingError
			switch {
			case errors.As(err, &missing):
				// Usable only through the agent, if it holds the key.
				if missing.PublicKey != nil && agentPub[string(missing.PublicKey.Marshal())] {
					continue
				}
				a.encrypted = append(a.encrypted, f.path)
			case err != nil:
				if !f.explicit {
					continue // e.g. a key format we do not read; ssh(1) may still use it
				}
				return fmt.Errorf("private key %s: %w", f.path, err)
			default:
				add(s)
			}
		}
		return nil
	}
	if err := loadFiles(files); err != nil {
		a.close()
		return nil, err
	}
	for _, s := range agentKeys {
		add(s)
	}
	if err := loadFiles(defaults); err != nil {
		a.close()
		return nil, err
	}
	if len(a.signers) == 0 {
		a.close()
		return nil, a.noKeyError(opts.NoAgent)
	}
	return a, nil
}

func (a *authKeys) noKeyError(noAgent bool) error {
	if len(a.encrypted) > 0 {
		how := "load it into ssh-agent (eval $(ssh-agent); ssh-add " + Quote(a.encrypted[0]) + ")"
		if noAgent {
			how = "let ezrestore use the agent and ssh-add it"
		}
		return fmt.Errorf("no usable SSH key: %s is passphrase-protected and no ssh-agent holds it; %s, or use a key without a passphrase",
			strings.Join(a.encrypted, ", "), how)
	}
	return errors.New("no SSH key to offer: set ansible_ssh_private_key_file, pass --private-key, put a key in ~/.ssh (id_ed25519, id_ecdsa, id_rsa) or run ssh-agent")
}

// authFailedHint adds what we know to an authentication failure.
func (a *authKeys) authFailedHint(h *inventory.Host) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "the host accepted none of the %d key(s) offered for user %s", len(a.signers), loginUser(h))
	if len(a.encrypted) > 0 {
		fmt.Fprintf(&b, " (passphrase-protected keys not in the agent were not tried: %s)", strings.Join(a.encrypted, ", "))
	}
	return b.String()
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
