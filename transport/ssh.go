package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ezrestore/ezrestore/internal/syncbuf"
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
	route  *Route
	client *ssh.Client
	opts   Options
	// hops are what the connection rides on (jump host clients, a proxy
	// command), closed after it, last first.
	hops []io.Closer

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// Dial connects to h along its route (Resolve), verifies every hop's host
// key against the route's known_hosts files, authenticates with the keys
// the route allows, and when commands must go through sudo checks once that
// sudo works without a password. Its errors are *DialError with a Kind.
func Dial(ctx context.Context, h *inventory.Host, opts Options) (Conn, error) {
	r, _ := Resolve(h, opts)
	return DialRoute(ctx, h, r, opts)
}

// DialRoute is Dial along a route already resolved for h.
func DialRoute(ctx context.Context, h *inventory.Host, r *Route, opts Options) (Conn, error) {
	opts = withDefaults(opts)
	c, err := dialRoute(ctx, h, r, opts)
	if err != nil {
		return nil, newDialError(h, r, err)
	}
	if needsSudo(h, r.User.Value) {
		if err := c.checkSudo(ctx); err != nil {
			c.Close()
			return nil, newDialError(h, r, err)
		}
	}
	return c, nil
}

func newDialError(h *inventory.Host, r *Route, err error) *DialError {
	de := &DialError{Host: h.Name, Addr: r.hostPort(), User: r.User.Value, Via: r.Via(), Err: err, Kind: classify(err)}
	var he *hopError
	if errors.As(err, &he) {
		de.Hop = he.hop
	}
	return de
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

// hostAddr and loginUser are what the inventory alone says (for a host that
// was never dialled, such as one skipped by a cancel).
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

// dialRoute connects hop by hop: the first hop over TCP (or its
// ProxyCommand), every next one through a direct-tcpip channel of the one
// before, each with its own host-key check and authentication.
func dialRoute(ctx context.Context, h *inventory.Host, r *Route, opts Options) (*sshConn, error) {
	hops := append(append([]*Route{}, r.Jumps...), r)
	var closers []io.Closer
	fail := func(err error) (*sshConn, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
		return nil, err
	}
	var prev *ssh.Client
	var client *ssh.Client
	for i, hop := range hops {
		timeout := hop.ConnectTimeout
		if timeout <= 0 {
			timeout = opts.ConnectTimeout
		}
		deadline := time.Now().Add(timeout)
		var conn net.Conn
		var err error
		switch {
		case prev != nil:
			conn, err = dialThrough(ctx, prev, hop.hostPort(), deadline, "connect through the jump host")
		case hop.ProxyCommand.Value != "":
			conn, err = startProxyCommand(hop)
		default:
			conn, err = dialTCP(ctx, hop.hostPort(), deadline, timeout)
		}
		if err == nil {
			client, err = handshake(ctx, conn, hop, deadline, timeout)
		}
		if err != nil {
			if i < len(hops)-1 {
				err = &hopError{hop: hop.Target(), err: err}
			}
			return fail(err)
		}
		if i < len(hops)-1 {
			closers = append(closers, client)
		}
		prev = client
	}
	c := &sshConn{host: h, route: r, client: client, opts: opts, hops: closers, done: make(chan struct{})}
	go c.keepalive()
	return c, nil
}

func dialTCP(ctx context.Context, hostport string, deadline time.Time, timeout time.Duration) (net.Conn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	tcp, err := d.DialContext(dctx, "tcp", hostport)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if dctx.Err() != nil {
			return nil, fmt.Errorf("connect: %w within %s", errTimeout, timeout)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return tcp, nil
}

// dialThrough opens a direct-tcpip channel to hostport through a jump host
// (or from a host to a port it reaches: Dialer); what names it in errors.
func dialThrough(ctx context.Context, jump *ssh.Client, hostport string, deadline time.Time, what string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := jump.Dial("tcp", hostport)
		ch <- result{c, err}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, fmt.Errorf("%s: %w", what, res.err)
		}
		return &deadlineConn{Conn: res.c}, nil
	case <-ctx.Done():
		go func() {
			if res := <-ch; res.c != nil {
				res.c.Close()
			}
		}()
		return nil, ctx.Err()
	case <-timer.C:
		go func() {
			if res := <-ch; res.c != nil {
				res.c.Close()
			}
		}()
		return nil, fmt.Errorf("%s: %w", what, errTimeout)
	}
}

// handshake runs the SSH handshake of hop over conn and returns its client.
func handshake(ctx context.Context, conn net.Conn, hop *Route, deadline time.Time, timeout time.Duration) (*ssh.Client, error) {
	hostport := hop.hostPort()
	var files []string
	for _, k := range hop.KnownHosts {
		files = append(files, k.Value)
	}
	checker, err := newHostKeyChecker(files, hop.StrictHostKeyChecking.Value == "accept-new", hostport)
	if err != nil {
		conn.Close()
		return nil, err
	}
	keys, err := loadAuthKeys(hop)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer keys.close()
	cfg := &ssh.ClientConfig{
		User:              hop.User.Value,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(keys.signers...)},
		HostKeyCallback:   checker.check,
		HostKeyAlgorithms: checker.hostKeyAlgorithms(),
		Timeout:           timeout,
		ClientVersion:     "SSH-2.0-ezrestore",
	}
	// The handshake gets the rest of the timeout; a cancelled ctx closes the socket.
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, hostport, cfg)
	stop()
	if err != nil {
		conn.Close()
		var pe *proxyError
		switch {
		case checker.failure != nil:
			return nil, checker.failure
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &pe):
			return nil, err
		case errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline):
			return nil, fmt.Errorf("ssh handshake: %w within %s", errTimeout, timeout)
		case strings.Contains(err.Error(), "no common algorithm for host key") && len(checker.known) > 0:
			return nil, noCommonAlgorithmError(hostport, checker.known, err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, keys.authFailed(hop)
		}
		if pc, ok := conn.(*procConn); ok {
			if perr := pc.failure(); perr != nil {
				return nil, perr
			}
		}
		return nil, fmt.Errorf("ssh handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
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
		for i := len(c.hops) - 1; i >= 0; i-- {
			c.hops[i].Close()
		}
	})
	return c.closeErr
}

// Route is how this connection reached its host.
func (c *sshConn) Route() *Route { return c.route }

// Run runs cmd through sh as root (see Conn). The command's own exit status is
// in Result.ExitCode; err is for the transport, the timeout and cancellation.
func (c *sshConn) Run(ctx context.Context, cmd string) (Result, error) {
	res, err := c.run(ctx, wrapBecome(c.host, c.route.User.Value, cmd))
	if err != nil {
		return res, err
	}
	if isSudoPasswordFailure(c.host, c.route.User.Value, res) {
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
	timer := time.NewTimer(c.opts.CommandTimeout)
	defer timer.Stop()
	// Opening a session and starting the command each wait for the host's
	// answer, which a host whose sshd lost its session process may never
	// send while the TCP connection stays up (until the keepalive gives up).
	// They wait here beside the context and the timeout, like the command.
	// Locked: after a cancel the library may still be copying output while we read it.
	var stdout, stderr syncbuf.Buffer
	type started struct {
		sess *ssh.Session
		err  error
	}
	startc := make(chan started, 1)
	go func() {
		sess, err := c.client.NewSession()
		if err != nil {
			startc <- started{nil, fmt.Errorf("open session: %w", err)}
			return
		}
		sess.Stdout, sess.Stderr = &stdout, &stderr
		if err := sess.Start(line); err != nil {
			sess.Close()
			startc <- started{nil, fmt.Errorf("start command: %w", err)}
			return
		}
		startc <- started{sess, nil}
	}()
	var sess *ssh.Session
	giveUp := func() {
		// The open may still succeed: close that session when it does.
		go func() {
			if st := <-startc; st.sess != nil {
				abort(st.sess)
			}
		}()
	}
	select {
	case st := <-startc:
		if st.err != nil {
			return res, st.err
		}
		sess = st.sess
	case <-ctx.Done():
		giveUp()
		return res, ctx.Err()
	case <-timer.C:
		giveUp()
		return res, fmt.Errorf("no answer to opening a session after %s: %w", c.opts.CommandTimeout, context.DeadlineExceeded)
	}
	defer sess.Close()
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()

	finish := func() Result {
		res.Stdout, res.Stderr, res.Duration = stdout.Bytes(), stderr.Bytes(), time.Since(start)
		return res
	}
	var err error
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
	if isSudoPasswordFailure(c.host, c.route.User.Value, res) {
		return fmt.Errorf("%w (sudo -n true said: %s)", ErrSudoPassword, firstLine(res.Stderr))
	}
	return &becomeError{msg: fmt.Sprintf("commands must run through sudo, but `sudo -n true` exited %d: %s", res.ExitCode, firstLine(res.Stderr))}
}

// needsSudo is true when the login user is not the user commands must run as.
// A root login with become (to root) runs commands directly: many root-only
// hosts have no sudo at all.
func needsSudo(h *inventory.Host, login string) bool {
	return login != becomeTarget(h)
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
// The login user is the inventory's; a Conn uses its route's.
func WrapBecome(h *inventory.Host, cmd string) string { return wrapBecome(h, loginUser(h), cmd) }

func wrapBecome(h *inventory.Host, login, cmd string) string {
	if !needsSudo(h, login) {
		return cmd
	}
	return sudoPrefix(h) + " sh -c " + Quote(cmd)
}

// isSudoPasswordFailure recognizes `sudo -n` refusing for want of a password.
func isSudoPasswordFailure(h *inventory.Host, login string, res Result) bool {
	if !needsSudo(h, login) || res.ExitCode != 1 {
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
