// Package localetcd runs a throwaway single-member etcd on loopback ports
// of this machine: the one starter behind the restore proof (package
// verify) and the tests' local etcd (internal/testkit/etcdtest).
package localetcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrPortTaken means a port picked free was bound by someone else before
// etcd could: pick new ports and start again.
var ErrPortTaken = errors.New("port taken")

// Ports picks n free loopback ports. They are free when picked, not
// reserved: Start says ErrPortTaken when one was taken meanwhile.
func Ports(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// URL is the plain-HTTP loopback URL of port.
func URL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// Options say which etcd to run where.
type Options struct {
	// Bin is the etcd binary.
	Bin string
	// Name is the member name; DataDir its data dir (a restored one, or
	// empty for a new cluster).
	Name    string
	DataDir string
	// ClientPort and PeerPort are loopback ports (see Ports).
	ClientPort, PeerPort int
	// Flags are more etcd flags.
	Flags []string
	// Log, when set, receives etcd's output as well.
	Log io.Writer
}

// Etcd is a running throwaway member.
type Etcd struct {
	ClientURL, PeerURL string
	cmd                *exec.Cmd
	done               chan struct{}
	waitErr            error
	out                *tail
	stopOnce           sync.Once
}

// Start runs etcd and returns once it reports itself healthy (GET /health),
// or with why not: ErrPortTaken, the exit and etcd's last lines, or ctx's
// end. The process dies with this one (Pdeathsig), so an interrupted caller
// leaves no etcd behind.
func Start(ctx context.Context, o Options) (*Etcd, error) {
	e := &Etcd{ClientURL: URL(o.ClientPort), PeerURL: URL(o.PeerPort), done: make(chan struct{}), out: &tail{}}
	args := append([]string{
		"--name", o.Name, "--data-dir", o.DataDir,
		"--listen-client-urls", e.ClientURL, "--advertise-client-urls", e.ClientURL,
		"--listen-peer-urls", e.PeerURL, "--initial-advertise-peer-urls", e.PeerURL,
		"--initial-cluster", o.Name + "=" + e.PeerURL,
	}, o.Flags...)
	e.cmd = exec.Command(o.Bin, args...)
	var w io.Writer = e.out
	if o.Log != nil {
		w = io.MultiWriter(e.out, o.Log)
	}
	e.cmd.Stdout, e.cmd.Stderr = w, w
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Bin, err)
	}
	go func() { e.waitErr = e.cmd.Wait(); close(e.done) }()
	if err := e.waitHealthy(ctx); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Etcd) waitHealthy(ctx context.Context) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-e.done:
			if e.out.contains("address already in use") {
				return ErrPortTaken
			}
			return fmt.Errorf("etcd exited before it was healthy (%v): %s", e.waitErr, e.out.lastLines(8))
		case <-ctx.Done():
			return fmt.Errorf("etcd at %s was not healthy in time (%v): %s", e.ClientURL, ctx.Err(), e.out.lastLines(8))
		case <-time.After(100 * time.Millisecond):
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.ClientURL+"/health", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if bytes.Contains(body, []byte(`"true"`)) {
				return nil
			}
		}
	}
}

// Stop ends etcd (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (e *Etcd) Stop() {
	e.stopOnce.Do(func() {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			_ = e.cmd.Process.Kill()
			<-e.done
		}
	})
}

// tail keeps the last 64 KiB of etcd's output, for errors.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 64<<10; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) contains(s string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Contains(t.buf, []byte(s))
}

func (t *tail) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
