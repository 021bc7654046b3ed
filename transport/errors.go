package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Kind is why a host could not be reached, as an operator acts on it.
type Kind int

// The kinds of DialError, each with its own next step (DialError.Hint).
const (
	KindOther          Kind = iota
	KindRefused             // nothing listens on the port
	KindTimeout             // no answer in time (powered off, filtered)
	KindNoRoute             // no route to the host or its network
	KindUnresolved          // the name does not resolve
	KindProxy               // the ProxyCommand failed
	KindNoKey               // no usable key to offer
	KindAuth                // the host accepted none of the keys offered
	KindHostKeyUnknown      // no known_hosts line for the host
	KindHostKeyChanged      // the host offered a key other than the recorded one
	KindHostKeyRevoked      // the host's key is marked @revoked
	KindSudoPassword        // sudo asks for a password
	KindBecome              // sudo failed otherwise
	KindCanceled            // the run was cancelled
)

var kindNames = map[Kind]string{
	KindOther: "error", KindRefused: "connection_refused", KindTimeout: "timed_out", KindNoRoute: "no_route",
	KindUnresolved: "unresolved", KindProxy: "proxy_command_failed", KindNoKey: "no_key",
	KindAuth: "authentication_failed", KindHostKeyUnknown: "host_key_unknown", KindHostKeyChanged: "host_key_changed",
	KindHostKeyRevoked: "host_key_revoked", KindSudoPassword: "sudo_needs_password", KindBecome: "become_failed",
	KindCanceled: "canceled",
}

// String is the kind's snake_case name, as JSON shows it.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// MarshalText makes a Kind its name in JSON and YAML.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// DialError is why a host could not be connected to. Its message does not
// name the inventory host: callers say "host X: " once, in front of it.
type DialError struct {
	Host string // inventory name
	Addr string // address:port dialled
	User string
	Kind Kind
	// Hop is the jump host (user@address:port) where it failed, when it
	// failed before reaching the host itself; Via names the whole path.
	Hop string
	Via string
	Err error
}

func (e *DialError) Error() string {
	s := fmt.Sprintf("ssh %s@%s", e.User, e.Addr)
	if e.Via != "" {
		s += " (" + e.Via + ")"
	}
	if e.Hop != "" {
		s += ": at jump host " + e.Hop
	}
	return s + ": " + e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }

// Hint is the next thing to do about the failure, as one command or step.
func (e *DialError) Hint() string {
	where := e.User + "@" + e.Addr
	if e.Hop != "" {
		where = e.Hop + " (a jump host)"
	}
	host, port, _ := net.SplitHostPort(e.Addr)
	if e.Hop != "" {
		host, port, _ = net.SplitHostPort(e.Hop[strings.LastIndex(e.Hop, "@")+1:])
	}
	var hk *HostKeyError
	var ae *AuthError
	switch e.Kind {
	case KindRefused:
		return fmt.Sprintf("nothing listens on %s:%s: start sshd on %s (systemctl start ssh on its console), or correct the port (ansible_port, Port in ~/.ssh/config); `ezrestore inventory` shows where each value comes from", host, port, where)
	case KindTimeout:
		return fmt.Sprintf("%s does not answer: check that it is powered on and reachable from this bastion (ping %s), or whether it must be reached through a jump host (-o ProxyJump= in ansible_ssh_common_args, or ProxyJump in ~/.ssh/config)", where, host)
	case KindNoRoute:
		return fmt.Sprintf("this bastion has no route to %s: check the address (ansible_host) and the network, or reach it through a jump host (ProxyJump)", host)
	case KindUnresolved:
		return fmt.Sprintf("%s does not resolve: set ansible_host to its address, or HostName in ~/.ssh/config", host)
	case KindProxy:
		return "run the ProxyCommand by hand to see why it fails (its stderr is above)"
	case KindNoKey:
		return "name a key: --private-key KEY, ansible_ssh_private_key_file, IdentityFile in ~/.ssh/config, or load one into ssh-agent (ssh-add KEY)"
	case KindAuth:
		key := "KEY"
		if errors.As(e.Err, &ae) && len(ae.Offered) > 0 && ae.Offered[0].File != "" {
			key = ae.Offered[0].File
		}
		return fmt.Sprintf("authorize a key for %s on the host (ssh-copy-id -i %s.pub -p %s %s), or pass the right one with --private-key", where, Quote(key), port, e.User+"@"+host)
	case KindHostKeyChanged:
		if errors.As(e.Err, &hk) && len(hk.Want) > 0 {
			var cmds []string
			for _, f := range uniqueFiles(hk.Want) {
				cmds = append(cmds, "ssh-keygen -R "+Quote(knownhosts.Normalize(hk.HostPort))+" -f "+Quote(f))
			}
			return "verify the host's new key on its console (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub); only then: " + strings.Join(cmds, "; ") + "; and run again with --accept-new-host-keys"
		}
		return "verify the host's keys on its console, then remove the old known_hosts line with ssh-keygen -R"
	case KindHostKeyUnknown:
		fp := ""
		if errors.As(e.Err, &hk) && hk.Offered != nil {
			fp = " " + ssh.FingerprintSHA256(hk.Offered)
		}
		return fmt.Sprintf("check the fingerprint%s on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then run again with --accept-new-host-keys", fp)
	case KindHostKeyRevoked:
		return "the host's key is revoked: give the host a new key and record it; never connect with the revoked one"
	case KindSudoPassword:
		return fmt.Sprintf("allow %s passwordless sudo on the host: echo %s | sudo tee /etc/sudoers.d/ezrestore && sudo visudo -cf /etc/sudoers.d/ezrestore; or log in as root (ansible_user=root)",
			e.User, Quote(e.User+" ALL=(ALL) NOPASSWD: ALL"))
	case KindBecome:
		return fmt.Sprintf("log in as %s and run `sudo -n true` to see why sudo fails", where)
	case KindCanceled:
		return ""
	}
	return fmt.Sprintf("try by hand: ssh -v -p %s %s@%s true", port, e.User, host)
}

// HostKeyError is a host whose key could not be trusted.
type HostKeyError struct {
	Kind     Kind   // KindHostKeyUnknown, KindHostKeyChanged or KindHostKeyRevoked
	HostPort string // as known_hosts records it
	// Offered is the key the host offered (nil when it offered none of
	// the recorded types); Want the lines recorded for the host.
	Offered ssh.PublicKey
	Want    []knownhosts.KnownKey
	// File is where a new key would be recorded (unknown host).
	File  string
	cause error
	msg   string
}

func (e *HostKeyError) Error() string { return e.msg }

// AuthError is a host that accepted none of the keys offered, or no key to offer.
type AuthError struct {
	User    string
	Offered []OfferedKey
	// Encrypted are passphrase-protected key files not in the agent, not offered.
	Encrypted []string
	msg       string
}

func (e *AuthError) Error() string { return e.msg }

// OfferedKey is one key offered to a host: a file, or the agent's key.
type OfferedKey struct {
	File    string // "" for an agent key
	Comment string // the agent's comment
	Type    string
	SHA256  string
}

func (k OfferedKey) String() string {
	src := k.File
	if src == "" {
		src = "agent key " + strings.TrimSpace(k.Comment)
	}
	return fmt.Sprintf("%s (%s %s)", src, k.Type, k.SHA256)
}

// becomeError is sudo failing otherwise than for a password.
type becomeError struct{ msg string }

func (e *becomeError) Error() string { return e.msg }

// hopError is a failure at a jump host.
type hopError struct {
	hop string
	err error
}

func (e *hopError) Error() string { return e.err.Error() }
func (e *hopError) Unwrap() error { return e.err }

// proxyError is a ProxyCommand that ended or failed.
type proxyError struct{ msg string }

func (e *proxyError) Error() string { return e.msg }

// classify finds the Kind of a dial failure.
func classify(err error) Kind {
	var hk *HostKeyError
	var ae *AuthError
	var be *becomeError
	var pe *proxyError
	var dnsErr *net.DNSError
	var oce *ssh.OpenChannelError
	switch {
	case errors.As(err, &hk):
		return hk.Kind
	case errors.As(err, &ae):
		if len(ae.Offered) == 0 {
			return KindNoKey
		}
		return KindAuth
	case errors.Is(err, ErrSudoPassword):
		return KindSudoPassword
	case errors.As(err, &be):
		return KindBecome
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, errTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return KindTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return KindNoRoute
	case errors.As(err, &dnsErr):
		return KindUnresolved
	case errors.As(err, &pe):
		return KindProxy
	case errors.As(err, &oce):
		// A jump host's sshd reports its own connect failure as text.
		m := strings.ToLower(oce.Message)
		switch {
		case strings.Contains(m, "refused"):
			return KindRefused
		case strings.Contains(m, "timed out"):
			return KindTimeout
		case strings.Contains(m, "no route"), strings.Contains(m, "unreachable"):
			return KindNoRoute
		case strings.Contains(m, "name or service not known"), strings.Contains(m, "not known"), strings.Contains(m, "resolve"):
			return KindUnresolved
		}
	}
	return KindOther
}

// errTimeout marks a connect or handshake that got no answer in time.
var errTimeout = errors.New("no answer")

// hinted is a dial failure with its next step in the message, as every
// command shows an unreachable host.
type hinted struct{ err *DialError }

func (h *hinted) Error() string { return h.err.Error() + "\n  next: " + h.err.Hint() }
func (h *hinted) Unwrap() error { return h.err }

// WithHint adds a DialError's Hint to its message; other errors pass as they are.
func WithHint(err error) error {
	var de *DialError
	if errors.As(err, &de) && de.Hint() != "" {
		return &hinted{de}
	}
	return err
}

// HostError is a failure on one host, the one such type every package uses
// (a step's task, a lock, a gather): "host H: what went wrong". Host == ""
// is work not bound to a host, printed without the prefix.
type HostError struct {
	Host string
	Err  error
}

func (e *HostError) Error() string {
	if e.Host == "" {
		return e.Err.Error()
	}
	return "host " + e.Host + ": " + e.Err.Error()
}

func (e *HostError) Unwrap() error { return e.Err }
