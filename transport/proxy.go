package transport

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/internal/syncbuf"
)

// procConn is a ProxyCommand run as OpenSSH runs it: through sh -c with
// %h %p %r %n substituted, its stdin and stdout the connection, its stderr
// kept for the error when it fails.
type procConn struct {
	cmd    *exec.Cmd
	line   string
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *syncbuf.Buffer
	exited chan struct{}
	// waitErr is cmd.Wait's result, set before exited closes.
	waitErr error

	closeOnce sync.Once
	deadlines
}

// proxyCommandLine substitutes the tokens OpenSSH substitutes in a ProxyCommand.
func proxyCommandLine(r *Route) string {
	var b strings.Builder
	v := r.ProxyCommand.Value
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		switch v[i] {
		case 'h':
			b.WriteString(r.Address.Value)
		case 'p':
			b.WriteString(strconv.Itoa(r.Port.Value))
		case 'r':
			b.WriteString(r.User.Value)
		case 'n':
			b.WriteString(r.Alias)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

func startProxyCommand(r *Route) (net.Conn, error) {
	line := proxyCommandLine(r)
	// OpenSSH runs "exec <command>" with the user's shell; sh is what
	// Ansible's ProxyCommands are written for.
	cmd := exec.Command("/bin/sh", "-c", "exec "+line)
	c := &procConn{cmd: cmd, line: line, stderr: &syncbuf.Buffer{}, exited: make(chan struct{})}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, &proxyError{msg: fmt.Sprintf("ProxyCommand %q: %v", line, err)}
	}
	if c.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, &proxyError{msg: fmt.Sprintf("ProxyCommand %q: %v", line, err)}
	}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, &proxyError{msg: fmt.Sprintf("ProxyCommand %q (%s): %v", line, r.ProxyCommand.From, err)}
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	c.deadlines.onExpire = func() { c.Close() }
	return c, nil
}

func (c *procConn) Read(p []byte) (int, error)  { return c.stdout.Read(p) }
func (c *procConn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

// Close ends the proxy command: its stdin closes, then it is killed if it
// does not end by itself within a second.
func (c *procConn) Close() error {
	c.closeOnce.Do(func() {
		c.deadlines.stop()
		c.stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(time.Second):
			c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return nil
}

// failure says why the proxy command ended, if it did (waiting briefly for
// it to end after the connection broke).
func (c *procConn) failure() error {
	select {
	case <-c.exited:
	case <-time.After(500 * time.Millisecond):
		return nil
	}
	msg := fmt.Sprintf("ProxyCommand %q ended", c.line)
	if c.waitErr != nil {
		msg += " (" + c.waitErr.Error() + ")"
	}
	if s := strings.TrimSpace(string(c.stderr.Bytes())); s != "" {
		msg += "; it said: " + lastLines(s, 5)
	}
	return &proxyError{msg: msg}
}

func (c *procConn) LocalAddr() net.Addr  { return pipeAddr("proxy-command") }
func (c *procConn) RemoteAddr() net.Addr { return pipeAddr(c.line) }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// deadlines gives a connection without deadlines of its own (a pipe, an
// SSH channel) the one use ezrestore makes of them: past the deadline the
// connection is closed, which ends a stuck handshake.
type deadlines struct {
	mu       sync.Mutex
	timer    *time.Timer
	onExpire func()
}

func (d *deadlines) SetDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if !t.IsZero() && d.onExpire != nil {
		d.timer = time.AfterFunc(time.Until(t), d.onExpire)
	}
	return nil
}

func (d *deadlines) SetReadDeadline(t time.Time) error  { return nil }
func (d *deadlines) SetWriteDeadline(t time.Time) error { return nil }

func (d *deadlines) stop() { d.SetDeadline(time.Time{}) }

// deadlineConn is an SSH channel to the next hop, with deadlines.
type deadlineConn struct {
	net.Conn
	once sync.Once
	dl   deadlines
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.once.Do(func() { c.dl.onExpire = func() { c.Conn.Close() } })
	return c.dl.SetDeadline(t)
}

func (c *deadlineConn) Close() error {
	c.dl.stop()
	return c.Conn.Close()
}
