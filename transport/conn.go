// Package transport is how ezrestore reaches hosts: SSH connections (host
// keys, authentication, become through sudo), commands, SFTP transfers and
// the shell quoting every remote value goes through. Every command that
// reaches hosts (restore, plan, status, backup) connects through Dial or
// Connect here, so they all honour the same keys, known_hosts and options.
//
// It knows nothing of etcd, playbooks or restores; it must not import the
// engine (orchestrator) or anything above it.
package transport

import (
	"context"
	"os"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
)

// Result is what one remote command produced.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
	Duration time.Duration
}

// Conn is one SSH connection to one host, opened once and reused by every step.
// It is safe for concurrent use (each Run opens its own session).
type Conn interface {
	// Host is the inventory host this connection reaches.
	Host() *inventory.Host
	// Run runs cmd, a POSIX sh command line whose values the caller has already
	// quoted, as root: through `sudo -n` when the host's become is set or its
	// user is not root. A non-zero exit is reported in Result.ExitCode with a nil
	// error; the error is for transport failures, timeouts and cancellation.
	Run(ctx context.Context, cmd string) (Result, error)
	// Upload copies the local file to remote (written as root, created with
	// mode, parent dir must exist), calling progress with the bytes written so far.
	Upload(ctx context.Context, local, remote string, mode os.FileMode, progress func(written int64)) error
	// Download copies the remote file to local (created 0600), calling progress.
	Download(ctx context.Context, remote, local string, progress func(read int64)) error
	// Close ends the connection.
	Close() error
}

// Options are the caller's part of how hosts are reached; Resolve adds
// each host's inventory variables and ssh_config to them.
type Options struct {
	// KnownHostsFiles are checked after the files the host's ssh arguments
	// and ssh_config name; a host key must match one of the files.
	KnownHostsFiles []string
	// AcceptNewHostKeys trusts a host with no recorded key (never a changed
	// key) and appends it to the first known_hosts file. Off by default.
	AcceptNewHostKeys bool
	// IdentityFiles are tried after the host's ansible_ssh_private_key_file
	// and the IdentityFile options of its ssh arguments and ssh_config.
	IdentityFiles []string
	// Sources say where each of KnownHostsFiles and IdentityFiles came
	// from ("--private-key", "cluster dir"), for Route; by path.
	Sources map[string]string
	// SSHConfigFile is the OpenSSH client config to read; empty means
	// ~/.ssh/config, "none" none. A -F in the host's ssh arguments wins.
	SSHConfigFile string
	// NoAgent turns off keys from $SSH_AUTH_SOCK.
	NoAgent bool
	// ConnectTimeout bounds TCP connect plus handshake (default 10s).
	ConnectTimeout time.Duration
	// CommandTimeout bounds one Run unless its context ends sooner (default 10m).
	CommandTimeout time.Duration
}
