package transport

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ezrestore/ezrestore/internal/testkit/sshtest"
	"github.com/ezrestore/ezrestore/inventory"
)

// jumpPair starts a jump sshd and a target sshd, a known_hosts file that
// trusts both, and options offering both servers' client keys.
func jumpPair(t *testing.T) (jump, target *sshtest.Server, kh string, opts Options) {
	t.Helper()
	sshtest.Require(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	jump, target = sshtest.Start(t), sshtest.Start(t)
	kh = filepath.Join(t.TempDir(), "known_hosts")
	writeT(t, kh, jump.KnownHostsLine+"\n"+target.KnownHostsLine+"\n")
	return jump, target, kh, Options{IdentityFiles: []string{jump.ClientKeyFile, target.ClientKeyFile}, NoAgent: true}
}

// argsHost is the target as an inventory host whose ssh arguments are args.
func argsHost(target *sshtest.Server, args string) *inventory.Host {
	return invHost("target", map[string]string{"ansible_host": "127.0.0.1", "ansible_port": strconv.Itoa(target.Port), "ansible_ssh_common_args": args})
}

func dialErr(t *testing.T, h *inventory.Host, opts Options) *DialError {
	t.Helper()
	c, err := Dial(context.Background(), h, opts)
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded")
	}
	var de *DialError
	if !errors.As(err, &de) {
		t.Fatalf("not a DialError: %v", err)
	}
	t.Logf("%v\n  hint: %s", de, de.Hint())
	return de
}

// The jump host is dialled with host-key checking of its own, then the
// target through a direct-tcpip channel with its own check.
func TestDialThroughJumpHost(t *testing.T) {
	jump, target, kh, opts := jumpPair(t)
	jumpSpec := "root@127.0.0.1:" + strconv.Itoa(jump.Port)

	for _, args := range []string{"-o ProxyJump=" + jumpSpec, "-J " + jumpSpec, "-o 'ProxyJump " + jumpSpec + "'"} {
		h := argsHost(target, args+" -o UserKnownHostsFile="+kh)
		c := dialT(t, h, opts)
		res, err := c.Run(context.Background(), "echo ok")
		if err != nil || string(res.Stdout) != "ok\n" {
			t.Fatalf("%s: Run = %q, %v", args, res.Stdout, err)
		}
		if via := c.(*sshConn).Route().Via(); !strings.Contains(via, jumpSpec) {
			t.Errorf("%s: route %q", args, via)
		}
	}
	// The target's sshd saw the connection come in through the jump
	// host's sshd, which logs the forwarding.
	if !strings.Contains(jump.Log(), "direct-tcpip") && !strings.Contains(jump.Log(), "Connection from") {
		t.Errorf("jump sshd log shows no forwarding:\n%s", jump.Log())
	}

	// Host keys are checked at every hop: the jump host unknown...
	onlyTarget := filepath.Join(t.TempDir(), "kh")
	writeT(t, onlyTarget, target.KnownHostsLine+"\n")
	de := dialErr(t, argsHost(target, "-J "+jumpSpec+" -o UserKnownHostsFile="+onlyTarget), opts)
	if de.Kind != KindHostKeyUnknown || de.Hop != jumpSpec {
		t.Errorf("unknown jump host key: kind %v hop %q", de.Kind, de.Hop)
	}
	// ...and the target unknown, past a known jump host.
	onlyJump := filepath.Join(t.TempDir(), "kh")
	writeT(t, onlyJump, jump.KnownHostsLine+"\n")
	de = dialErr(t, argsHost(target, "-J "+jumpSpec+" -o UserKnownHostsFile="+onlyJump), opts)
	if de.Kind != KindHostKeyUnknown || de.Hop != "" || !strings.Contains(de.Hint(), ssh.FingerprintSHA256(target.HostKey)) || !strings.Contains(de.Hint(), "--accept-new-host-keys") {
		t.Errorf("unknown target key: kind %v hop %q hint %q", de.Kind, de.Hop, de.Hint())
	}
	// Nothing listens behind the jump host: refused, said by the jump host.
	closed := invHost("gone", map[string]string{"ansible_host": "127.0.0.1", "ansible_port": strconv.Itoa(freePortT(t)),
		"ansible_ssh_common_args": "-J " + jumpSpec + " -o UserKnownHostsFile=" + kh})
	if de = dialErr(t, closed, opts); de.Kind != KindRefused {
		t.Errorf("refused behind the jump host: kind %v", de.Kind)
	}
}

// A ProxyCommand is run as OpenSSH runs it; here OpenSSH's own ssh -W.
func TestDialThroughProxyCommand(t *testing.T) {
	jump, target, kh, opts := jumpPair(t)
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client")
	}
	pc := "ssh -F /dev/null -i " + jump.ClientKeyFile + " -o UserKnownHostsFile=" + kh + " -o StrictHostKeyChecking=yes -o BatchMode=yes -W %h:%p -p " + strconv.Itoa(jump.Port) + " root@127.0.0.1"
	h := argsHost(target, `-o ProxyCommand="`+pc+`" -o UserKnownHostsFile=`+kh)
	c := dialT(t, h, opts)
	if res, err := c.Run(context.Background(), "echo ok"); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("Run = %q, %v", res.Stdout, err)
	}
	// A proxy command that fails is KindProxy with its stderr.
	bad := argsHost(target, `-o ProxyCommand="echo no such bastion >&2; exit 3" -o UserKnownHostsFile=`+kh)
	de := dialErr(t, bad, opts)
	if de.Kind != KindProxy || !strings.Contains(de.Error(), "no such bastion") {
		t.Errorf("failed proxy command: kind %v: %v", de.Kind, de)
	}
}

// The true cause, per kind, from a real sshd.
func TestDialErrorKinds(t *testing.T) {
	srv, opts := e2eServer(t)

	t.Run("refused", func(t *testing.T) {
		h := &inventory.Host{Name: "x", Address: "127.0.0.1", Port: freePortT(t), User: "root"}
		de := dialErr(t, h, opts)
		if de.Kind != KindRefused || !strings.Contains(de.Hint(), "start sshd") {
			t.Errorf("kind %v hint %q", de.Kind, de.Hint())
		}
	})
	t.Run("timed out", func(t *testing.T) {
		// A peer that accepts and never speaks.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		o := opts
		o.ConnectTimeout = time.Second
		h := &inventory.Host{Name: "x", Address: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, User: "root"}
		if de := dialErr(t, h, o); de.Kind != KindTimeout || !strings.Contains(de.Hint(), "ProxyJump") {
			t.Errorf("kind %v hint %q", de.Kind, de.Hint())
		}
	})
	t.Run("authentication failed names the keys offered", func(t *testing.T) {
		_, priv := newTestKey(t)
		stranger := filepath.Join(t.TempDir(), "stranger")
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		writeT(t, stranger, string(pem.EncodeToMemory(block)))
		o := opts
		o.IdentityFiles = []string{stranger}
		de := dialErr(t, srv.Host("root"), o)
		signer, _ := ssh.NewSignerFromKey(priv)
		var ae *AuthError
		if de.Kind != KindAuth || !errors.As(de, &ae) || len(ae.Offered) != 1 || ae.Offered[0].File != stranger ||
			!strings.Contains(de.Error(), ssh.FingerprintSHA256(signer.PublicKey())) || !strings.Contains(de.Hint(), "ssh-copy-id -i "+stranger+".pub") {
			t.Errorf("kind %v offered %+v hint %q", de.Kind, ae, de.Hint())
		}
	})
	t.Run("host key changed", func(t *testing.T) {
		wrong, _ := newTestKey(t)
		kh := filepath.Join(t.TempDir(), "known_hosts")
		writeT(t, kh, "# first\n"+strings.Replace(srv.KnownHostsLine, strings.Fields(srv.KnownHostsLine)[2], keyBase64(wrong.PublicKey()), 1)+"\n")
		o := opts
		o.KnownHostsFiles = []string{kh}
		de := dialErr(t, srv.Host("root"), o)
		for _, want := range []string{kh + " line 2", ssh.FingerprintSHA256(srv.HostKey), ssh.FingerprintSHA256(wrong.PublicKey())} {
			if !strings.Contains(de.Error(), want) {
				t.Errorf("message lacks %q", want)
			}
		}
		if de.Kind != KindHostKeyChanged || !strings.Contains(de.Hint(), "ssh-keygen -R '[127.0.0.1]:"+strconv.Itoa(srv.Port)+"' -f "+kh) {
			t.Errorf("kind %v hint %q", de.Kind, de.Hint())
		}
	})
	t.Run("host key unknown", func(t *testing.T) {
		o := opts
		o.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "empty")}
		de := dialErr(t, srv.Host("root"), o)
		if de.Kind != KindHostKeyUnknown || !strings.Contains(de.Error(), ssh.FingerprintSHA256(srv.HostKey)) {
			t.Errorf("kind %v: %v", de.Kind, de)
		}
	})
	t.Run("sudo needs a password", func(t *testing.T) {
		user := srv.AddUser(t, false)
		de := dialErr(t, srv.Host(user), opts)
		if de.Kind != KindSudoPassword || !strings.Contains(de.Hint(), "NOPASSWD") {
			t.Errorf("kind %v hint %q", de.Kind, de.Hint())
		}
	})
	t.Run("become failed", func(t *testing.T) {
		user := srv.AddUser(t, true)
		h := srv.Host(user)
		h.Become, h.BecomeUser = true, "nosuchuser"+strconv.Itoa(os.Getpid())
		de := dialErr(t, h, opts)
		if de.Kind != KindBecome || !strings.Contains(de.Hint(), "sudo -n true") {
			t.Errorf("kind %v hint %q", de.Kind, de.Hint())
		}
	})
}

func freePortT(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func keyBase64(k ssh.PublicKey) string {
	return strings.Fields(string(ssh.MarshalAuthorizedKey(k)))[1]
}
