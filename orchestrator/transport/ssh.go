package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ezrestore/ezrestore/inventory"
)

const (
	defaultConnectTimeout = 10 * time.Second
	defaultCommandTimeout = 10 * time.Minute
	// keepaliveInterval finds a dead peer during long steps; a restore can
	// keep a connection idle for minutes while other hosts work.
	keepaliveInterval = 30 * time.Second
)

// ErrSudoPassword is wrapped by errors from hosts whose sudo asks for a password.
var ErrSudoPassword = errors.New("sudo asks for a password; ezrestore needs passwordless sudo (NOPASSWD) for its user")

// sshConn is the Conn of one host over golang.org/x/crypto/ssh.
type sshConn struct {
	host   *inventory.Host
	client *ssh.Client
	opts   Options

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// DialError is why a host could not be connected to. Its message does not
// name the inventory host: callers say "host X: " once, in front of it.
type DialError struct {
	Host string // inventory name
	Addr string // address:port dialled
	User string
	Err  error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("ssh %s@%s: %v", e.User, e.Addr, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// Dial connects to h, verifies its host key against opts.KnownHostsFiles,
// authenticates with the keys opts allow, and when commands must go through
// sudo checks once that sudo works without a password. Its errors are
// *DialError.
func Dial(ctx context.Context, h *inventory.Host, opts Options) (Conn, error) {
	opts = withDefaults(opts)
	fail := func(err error) error {
		return &DialError{Host: h.Name, Addr: hostAddr(h), User: loginUser(h), Err: err}
	}
	c, err := dial(ctx, h, opts)
	if err != nil {
		return nil, fail(err)
	}
	if needsSudo(h) {
		if err := c.checkSudo(ctx); err != nil {
			c.Close()
			return nil, fail(err)
		}
	}
	return c, nil
}

func withDefaults(o Options) Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = defaultCommandTimeout
	}
	return o
}

func hostAddr(h *inventory.Host) string {
	addr := h.Address
	if addr == "" {
		addr = h.Name
	}
	port := h.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

func loginUser(h *inventory.Host) string {
	if h.User == "" {
		return "root"
	}
	return h.User
}

func dial(ctx context.Context, h *inventory.Host, opts Options) (*sshConn, error) {
	hostport := hostAddr(h)
	checker, err := newHostKeyChecker(opts.KnownHostsFiles, opts.AcceptNewHostKeys, hostport)
	if err != nil {
		return nil, err
	}
	keys, err := loadAuthKeys(h, opts)
	if err != nil {
		return nil, err
	}
	defer keys.close()

	cfg := &ssh.ClientConfig{
		User:              loginUser(h),
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(keys.signers...)},
		HostKeyCallback:   checker.check,
		HostKeyAlgorithms: checker.hostKeyAlgorithms(),
		Timeout:           opts.ConnectTimeout,
		ClientVersion:     "SSH-2.0-ezrestore",
	}

	deadline := time.Now().Add(opts.ConnectTimeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	tcp, err := d.DialContext(dctx, "tcp", hostport)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if dctx.Err() != nil {
			return nil, fmt.Errorf("connect: no answer within %s", opts.ConnectTimeout)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	// The handshake gets the rest of ConnectTimeout; a cancelled ctx closes the socket.
	tcp.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(tcp, hostport, cfg)
	stop()
	if err != nil {
		tcp.Close()
		switch {
		case checker.failure != nil:
			return nil, checker.failure
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline):
			return nil, fmt.Errorf("ssh handshake: no answer within %s", opts.ConnectTimeout)
		case strings.Contains(err.Error(), "no common algorithm for host key") && len(checker.known) > 0:
			return nil, noCommonAlgorithmError(hostport, checker.known, err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("authentication failed: %s", keys.authFailedHint(h))
		}
		return nil, fmt.Errorf("ssh handshake: %w", err)
	}
	tcp.SetDeadline(time.Time{})
	c := &sshConn{host: h, client: ssh.NewClient(sc, chans, reqs), opts: opts, done: make(chan struct{})}
	go c.keepalive()
	return c, nil
}

// keepalive closes the connection when the peer stops answering, so a Run on
// a dead host fails instead of hanging until its timeout.
func (c *sshConn) keepalive() {
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case <-c.done:
			return
		case err := <-answered:
			if err != nil {
				c.Close()
				return
			}
		case <-time.After(3 * keepaliveInterval):
			c.Close()
			return
		}
	}
}

func (c *sshConn) Host() *inventory.Host { return c.host }

func (c *sshConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		if err := c.client.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = err
		}
	})
	return c.closeErr
}

// Run runs cmd through sh as root (see Conn). The command's own exit status is
// in Result.ExitCode; err is for the transport, the timeout and cancellation.
func (c *sshConn) Run(ctx context.Context, cmd string) (Result, error) {
	res, err := c.run(ctx, WrapBecome(c.host, cmd))
	if err != nil {
		return res, err
	}
	if isSudoPasswordFailure(c.host, res) {
		return res, fmt.Errorf("%w", ErrSudoPassword)
	}
	return res, nil
}

// run executes the exact command line.
func (c *sshConn) run(ctx context.Context, line string) (Result, error) {
	start := time.Now()
	var res Result
	if err := ctx.Err(); err != nil {
		return res, err
	}
	sess, err := c.client.NewSession()
	if err != nil {
		return res, fmt.Errorf("open session: %w", err)
	}
	defer sess.Close()
	// Locked: after a cancel the library may still be copying output while we read it.
	var stdout, stderr lockedBuffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if err := sess.Start(line); err != nil {
		return res, fmt.Errorf("start command: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()

	timer := time.NewTimer(c.opts.CommandTimeout)
	defer timer.Stop()
	finish := func() Result {
		res.Stdout, res.Stderr, res.Duration = stdout.Bytes(), stderr.Bytes(), time.Since(start)
		return res
	}
	select {
	case err = <-waited:
	case <-ctx.Done():
		abort(sess)
		return finish(), ctx.Err()
	case <-timer.C:
		abort(sess)
		return finish(), fmt.Errorf("command timed out after %s: %w", c.opts.CommandTimeout, context.DeadlineExceeded)
	}
	res = finish()
	var exitErr *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitStatus()
		if sig := exitErr.Signal(); sig != "" {
			res.ExitCode = 128 + signalNumber(sig)
		}
	default:
		return res, fmt.Errorf("command ended without an exit status: %w", err)
	}
	return res, nil
}

// abort asks the remote side to stop the command and closes the session;
// sshd then closes the command's pipes. Waiting for the remote process is not
// our business: the caller gets control back at once.
func abort(sess *ssh.Session) {
	sess.Signal(ssh.SIGTERM)
	sess.Close()
}

func signalNumber(sig string) int {
	switch ssh.Signal(sig) {
	case ssh.SIGHUP:
		return 1
	case ssh.SIGINT:
		return 2
	case ssh.SIGQUIT:
		return 3
	case ssh.SIGILL:
		return 4
	case ssh.SIGABRT:
		return 6
	case ssh.SIGFPE:
		return 8
	case ssh.SIGKILL:
		return 9
	case ssh.SIGSEGV:
		return 11
	case ssh.SIGPIPE:
		return 13
	case ssh.SIGALRM:
		return 14
	case ssh.SIGTERM:
		return 15
	case ssh.SIGUSR1:
		return 10
	case ssh.SIGUSR2:
		return 12
	}
	return 127
}

// checkSudo fails early, with a clear message, when sudo is missing or wants a password.
func (c *sshConn) checkSudo(ctx context.Context) error {
	res, err := c.run(ctx, sudoPrefix(c.host)+" true")
	if err != nil {
		return err
	}
	if res.ExitCode == 0 {
		return nil
	}
	if isSudoPasswordFailure(c.host, res) {
		return fmt.Errorf("%w (sudo -n true said: %s)", ErrSudoPassword, firstLine(res.Stderr))
	}
	return fmt.Errorf("commands must run through sudo, but `sudo -n true` exited %d: %s", res.ExitCode, firstLine(res.Stderr))
}

// needsSudo is true when the login user is not the user commands must run as.
// A root login with become (to root) runs commands directly: many root-only
// hosts have no sudo at all.
func needsSudo(h *inventory.Host) bool {
	return loginUser(h) != becomeTarget(h)
}

// becomeTarget is the user commands run as: become_user when become is set
// and names one, else root.
func becomeTarget(h *inventory.Host) string {
	if h.Become && h.BecomeUser != "" {
		return h.BecomeUser
	}
	return "root"
}

// sudoPrefix is the sudo invocation that turns the login user into the target.
func sudoPrefix(h *inventory.Host) string {
	if t := becomeTarget(h); t != "root" {
		return "sudo -n -u " + Quote(t) + " --"
	}
	return "sudo -n --"
}

// WrapBecome returns the command line that runs cmd for h: cmd itself when the
// login user is already the target user, else `sudo -n [-u user] -- sh -c <cmd>`.
func WrapBecome(h *inventory.Host, cmd string) string {
	if !needsSudo(h) {
		return cmd
	}
	return sudoPrefix(h) + " sh -c " + Quote(cmd)
}

// isSudoPasswordFailure recognizes `sudo -n` refusing for want of a password.
func isSudoPasswordFailure(h *inventory.Host, res Result) bool {
	if !needsSudo(h) || res.ExitCode != 1 {
		return false
	}
	s := string(res.Stderr)
	return strings.HasPrefix(s, "sudo:") && (strings.Contains(s, "password is required") || strings.Contains(s, "a terminal is required"))
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
