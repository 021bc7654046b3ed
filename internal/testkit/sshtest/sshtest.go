// Package sshtest starts a private OpenSSH server on the loopback interface for
// tests that need a real sshd: its own host key, its own authorized key, a
// random port, stopped when the test ends. It needs root and /usr/sbin/sshd.
//
// Tests that use it are end-to-end tests: they run when EZRESTORE_E2E is set
// (make test sets it), fail when sshd is missing then, and skip otherwise.
package sshtest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ezrestore/ezrestore/internal/syncbuf"
	"github.com/ezrestore/ezrestore/inventory"
)

// SSHD is the server binary the tests run.
const SSHD = "/usr/sbin/sshd"

// sftpServers are where distributions put sftp-server.
var sftpServers = []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server"}

// Enabled reports whether end-to-end tests were asked for.
func Enabled() bool {
	v := os.Getenv("EZRESTORE_E2E")
	return v != "" && v != "0" && v != "false"
}

// Require skips t unless end-to-end tests are on, and fails it when they are
// on but this machine cannot run a private sshd.
func Require(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skip("needs a real sshd: set EZRESTORE_E2E=1 to run (make test does)")
	}
	if _, err := os.Stat(SSHD); err != nil {
		t.Fatalf("EZRESTORE_E2E is set but %s is missing: install openssh-server (make deps)", SSHD)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("EZRESTORE_E2E is set but the sshd tests need root to run a private sshd (uid %d)", os.Geteuid())
	}
}

// Server is a running private sshd.
type Server struct {
	// Addr is 127.0.0.1:Port.
	Addr string
	Port int
	// Dir holds the server's config, keys and logs; removed at the end.
	Dir string
	// HostKey is the server's public host key (ed25519).
	HostKey ssh.PublicKey
	// ClientKeyFile is an unencrypted ed25519 private key authorized for every user.
	ClientKeyFile string
	// KnownHostsLine is the known_hosts line that trusts this server.
	KnownHostsLine string

	cmd *exec.Cmd
	log *syncbuf.Buffer
}

// Start runs a private sshd and stops it when t ends. Require(t) first.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	// sshd's privilege separation wants this directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	s := &Server{Dir: dir, log: &syncbuf.Buffer{}}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	keygen(t, hostKey)
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	if s.HostKey, _, _, _, err = ssh.ParseAuthorizedKey(pub); err != nil {
		t.Fatalf("sshtest: host key: %v", err)
	}
	s.ClientKeyFile = filepath.Join(dir, "client_ed25519")
	keygen(t, s.ClientKeyFile)
	clientPub, err := os.ReadFile(s.ClientKeyFile + ".pub")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	// Users other than root read authorized_keys as themselves: it lives in a
	// world-readable directory of its own, apart from the private keys.
	pubDir, err := os.MkdirTemp("", "ezrestore-sshd-pub-")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(pubDir) })
	if err := os.Chmod(pubDir, 0o755); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	authorized := filepath.Join(pubDir, "authorized_keys")
	if err := os.WriteFile(authorized, clientPub, 0o644); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	sftp := "internal-sftp"
	for _, p := range sftpServers {
		if _, err := os.Stat(p); err == nil {
			sftp = p // what real hosts run
			break
		}
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		cfg := filepath.Join(dir, "sshd_config")
		conf := strings.Join([]string{
			"ListenAddress 127.0.0.1:" + strconv.Itoa(port),
			"HostKey " + hostKey,
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"AuthorizedKeysFile " + authorized,
			"UsePAM no",
			"StrictModes no",
			"PermitRootLogin prohibit-password",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PubkeyAuthentication yes",
			"MaxSessions 64",
			"MaxStartups 100",
			"LogLevel VERBOSE",
			"Subsystem sftp " + sftp,
			"",
		}, "\n")
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatalf("sshtest: %v", err)
		}
		cmd := exec.Command(SSHD, "-D", "-e", "-f", cfg)
		cmd.Stdout, cmd.Stderr = s.log, s.log
		if err := cmd.Start(); err != nil {
			t.Fatalf("sshtest: start sshd: %v", err)
		}
		s.cmd, s.Port, s.Addr = cmd, port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if lastErr = waitBanner(s.Addr, exited); lastErr == nil {
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					<-exited
				}
				if t.Failed() {
					t.Logf("sshd log:\n%s", s.log.String())
				}
			})
			s.KnownHostsLine = knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
			return s
		}
		cmd.Process.Kill()
		<-exited
	}
	t.Fatalf("sshtest: sshd did not come up: %v\n%s", lastErr, s.log.String())
	return nil
}

// Log returns what sshd printed so far.
func (s *Server) Log() string { return s.log.String() }

// PID is the listening sshd's process ID (its connections' processes are
// its descendants).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// WriteKnownHosts writes a known_hosts file (0600) that trusts this server.
func (s *Server) WriteKnownHosts(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s.KnownHostsLine+"\n"), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
}

// Host returns an inventory host that reaches this server as user.
func (s *Server) Host(user string) *inventory.Host {
	return &inventory.Host{Name: "127.0.0.1", Address: "127.0.0.1", Port: s.Port, User: user}
}

// AddUser creates a throwaway login user (shell /bin/sh) with sudo rights:
// without a password when nopasswd, else sudo asks for one (which the user
// does not have). The user and its sudoers file are removed when t ends.
// It skips t when useradd or sudo is missing.
func (s *Server) AddUser(t testing.TB, nopasswd bool) string {
	t.Helper()
	for _, tool := range []string{"useradd", "userdel", "usermod", "sudo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("sshtest: %s is not installed (scripts/deps.sh installs sudo)", tool)
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := "ezrt" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "--no-create-home", "--no-user-group", "--home-dir", "/", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("sshtest: useradd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		// sshd's process for a closed session may still run as the user for a moment.
		var out []byte
		var err error
		for try := 0; try < 50; try++ {
			if out, err = exec.Command("userdel", name).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("sshtest: userdel %s: %v: %s", name, err, out)
	})
	// A locked account ("!") may not log in even with a key; "*" means no password but unlocked.
	if out, err := exec.Command("usermod", "-p", "*", name).CombinedOutput(); err != nil {
		t.Fatalf("sshtest: usermod: %v: %s", err, out)
	}
	rule := name + " ALL=(ALL) ALL\n"
	if nopasswd {
		rule = name + " ALL=(ALL) NOPASSWD: ALL\n"
	}
	sudoers := filepath.Join("/etc/sudoers.d", name)
	if err := os.WriteFile(sudoers, []byte(rule), 0o440); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(func() { os.Remove(sudoers) })
	return name
}

func keygen(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ezrestore-test", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sshtest: ssh-keygen: %v: %s", err, out)
	}
}

// freePort asks the kernel for an unused loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitBanner waits until addr answers with an SSH banner.
func waitBanner(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("sshd exited")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "SSH-2.0-") {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no SSH banner on %s within 10s", addr)
}
