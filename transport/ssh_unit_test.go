package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ezrestore/ezrestore/inventory"
)

func TestWrapBecome(t *testing.T) {
	cmd := `systemctl stop 'etcd' && echo "it's done"`
	tests := []struct {
		name string
		host inventory.Host
		want string
	}{
		{"root login runs directly", inventory.Host{User: "root"}, cmd},
		{"empty user means root", inventory.Host{}, cmd},
		{"root with become to root needs no sudo", inventory.Host{User: "root", Become: true}, cmd},
		{"non-root login goes through sudo", inventory.Host{User: "ops"}, "sudo -n -- sh -c " + Quote(cmd)},
		{"become with become_user root", inventory.Host{User: "ops", Become: true, BecomeUser: "root"}, "sudo -n -- sh -c " + Quote(cmd)},
		{"become_user other than root", inventory.Host{User: "ops", Become: true, BecomeUser: "etcd"}, "sudo -n -u etcd -- sh -c " + Quote(cmd)},
		{"root login with become_user etcd", inventory.Host{User: "root", Become: true, BecomeUser: "etcd"}, "sudo -n -u etcd -- sh -c " + Quote(cmd)},
		{"odd become_user is quoted", inventory.Host{User: "ops", Become: true, BecomeUser: "a b"}, "sudo -n -u 'a b' -- sh -c " + Quote(cmd)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WrapBecome(&tt.host, cmd); got != tt.want {
				t.Errorf("WrapBecome = %s\nwant          %s", got, tt.want)
			}
		})
	}
}

// TestWrapBecomeShell runs the wrapped command through a real sh, with sudo
// replaced by a function that runs its command, to prove the quoting holds.
func TestWrapBecomeShell(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	cmd := `printf '%s|' "it's" '$HOME' "a  b"; echo`
	line := WrapBecome(&inventory.Host{User: "ops"}, cmd)
	fake := `sudo() { while [ "$1" != "--" ]; do shift; done; shift; "$@"; }; ` + line
	out, err := exec.Command("sh", "-c", fake).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	if got, want := string(out), "it's|$HOME|a  b|\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestSudoPasswordFailure(t *testing.T) {
	ops := &inventory.Host{User: "ops"}
	tests := []struct {
		host *inventory.Host
		res  Result
		want bool
	}{
		{ops, Result{ExitCode: 1, Stderr: []byte("sudo: a password is required\n")}, true},
		{ops, Result{ExitCode: 1, Stderr: []byte("sudo: unable to resolve host x\nsudo: a password is required\n")}, true},
		{ops, Result{ExitCode: 1, Stderr: []byte("grep: password is required\n")}, false},
		{ops, Result{ExitCode: 2, Stderr: []byte("sudo: a password is required\n")}, false},
		{&inventory.Host{User: "root"}, Result{ExitCode: 1, Stderr: []byte("sudo: a password is required\n")}, false},
	}
	for i, tt := range tests {
		if got := isSudoPasswordFailure(tt.host, loginUser(tt.host), tt.res); got != tt.want {
			t.Errorf("case %d: got %v, want %v", i, got, tt.want)
		}
	}
}

func TestDialErrorMessage(t *testing.T) {
	err := error(&DialError{Host: "node1", Addr: "10.0.0.1:2222", User: "ops", Err: errors.New("connect: connection refused")})
	if got, want := err.Error(), "ssh ops@10.0.0.1:2222: connect: connection refused"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !strings.Contains(fmt.Sprintf("host %s: %v", "node1", err), "host node1: ssh ops@") {
		t.Errorf("callers name the host once")
	}
}

func newTestKey(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

func TestHostKeyChecker(t *testing.T) {
	dir := t.TempDir()
	known, _ := newTestKey(t)
	other, _ := newTestKey(t)
	file := filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize("127.0.0.5:2222")}, known.PublicKey())
	if err := os.WriteFile(file, []byte("# comment\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.ParseIP("127.0.0.5"), Port: 2222}

	c, err := newHostKeyChecker([]string{file}, true, "127.0.0.5:2222")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.hostKeyAlgorithms(); len(got) != 1 || got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("hostKeyAlgorithms = %v, want [ssh-ed25519]", got)
	}
	if err := c.check("127.0.0.5:2222", remote, known.PublicKey()); err != nil {
		t.Errorf("recorded key refused: %v", err)
	}
	err = c.check("127.0.0.5:2222", remote, other.PublicKey())
	if err == nil {
		t.Fatal("changed key accepted with AcceptNewHostKeys")
	}
	for _, want := range []string{"HOST KEY CHANGED", "[127.0.0.5]:2222", file + " line 2", "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("changed-key error lacks %q:\n%v", want, err)
		}
	}
	if b, _ := os.ReadFile(file); strings.Count(string(b), "\n") != 2 {
		t.Errorf("known_hosts was modified on a changed key:\n%s", b)
	}
}

func TestHostKeyCheckerUnknownAndRecord(t *testing.T) {
	dir := t.TempDir()
	key, _ := newTestKey(t)
	file := filepath.Join(dir, "cluster", "ssh", "known_hosts") // nothing exists yet
	remote := &net.TCPAddr{IP: net.ParseIP("127.0.0.6"), Port: 22}

	strict, err := newHostKeyChecker([]string{file}, false, "127.0.0.6:22")
	if err != nil {
		t.Fatal(err)
	}
	err = strict.check("127.0.0.6:22", remote, key.PublicKey())
	if err == nil {
		t.Fatal("unknown host accepted")
	}
	for _, want := range []string{"not known", "ssh-keyscan 127.0.0.6 >> " + file, "--accept-new-host-keys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("unknown-host error lacks %q:\n%v", want, err)
		}
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("strict check created %s", file)
	}

	tofu, err := newHostKeyChecker([]string{file}, true, "127.0.0.6:22")
	if err != nil {
		t.Fatal(err)
	}
	if err := tofu.check("127.0.0.6:22", remote, key.PublicKey()); err != nil {
		t.Fatalf("accept-new refused: %v", err)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(filepath.Dir(file)); dst.Mode().Perm() != 0o700 {
		t.Errorf("known_hosts dir mode %v, want 0700", dst.Mode().Perm())
	}
	again, err := newHostKeyChecker([]string{file}, false, "127.0.0.6:22")
	if err != nil {
		t.Fatal(err)
	}
	if err := again.check("127.0.0.6:22", remote, key.PublicKey()); err != nil {
		t.Errorf("recorded key refused on strict reconnect: %v", err)
	}
}

func TestAlgorithmsForRSA(t *testing.T) {
	got := algorithmsFor([]knownhosts.KnownKey{{Key: fakeKey{ssh.KeyAlgoRSA}}, {Key: fakeKey{ssh.KeyAlgoECDSA256}}})
	want := []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("algorithmsFor = %v, want %v", got, want)
	}
}

type fakeKey struct{ typ string }

func (k fakeKey) Type() string                                 { return k.typ }
func (k fakeKey) Marshal() []byte                              { return []byte(k.typ) }
func (k fakeKey) Verify(data []byte, sig *ssh.Signature) error { return errors.New("fake") }

func TestEncryptedKeyWithoutAgent(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	_, priv := newTestKey(t)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadAuthKeys(resolveT(&inventory.Host{Name: "h", KeyFile: file}, Options{NoAgent: true}))
	if err == nil {
		t.Fatal("encrypted key without agent accepted")
	}
	for _, want := range []string{file, "passphrase-protected", "ssh-agent"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the passphrase: %v", err)
	}
}

func TestMissingExplicitKeyFile(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	_, err := loadAuthKeys(resolveT(&inventory.Host{Name: "h", KeyFile: "/nonexistent/key"}, Options{NoAgent: true}))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/key") {
		t.Errorf("got %v, want an error naming the key file", err)
	}
}

// silentServer accepts TCP connections and never speaks, like a host whose
// sshd hangs; Dial must give up at ConnectTimeout.
func silentServer(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

func testKeyOpts(t *testing.T) Options {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	_, priv := newTestKey(t)
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return Options{KnownHostsFiles: []string{filepath.Join(dir, "known_hosts")}, IdentityFiles: []string{key}, NoAgent: true}
}

func TestDialHandshakeTimeout(t *testing.T) {
	port := silentServer(t)
	opts := testKeyOpts(t)
	opts.ConnectTimeout = 300 * time.Millisecond
	h := &inventory.Host{Name: "127.0.0.1", Address: "127.0.0.1", Port: port, User: "root"}
	start := time.Now()
	_, err := Dial(context.Background(), h, opts)
	if err == nil {
		t.Fatal("dial to a silent server succeeded")
	}
	// A silent server holds an unbounded dial forever: any bound far above
	// the timeout tells the two apart, however busy the machine.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("dial took %v with a 300ms timeout", d)
	}
	want := "ssh root@127.0.0.1:" + strconv.Itoa(port) + ": "
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "300ms") {
		t.Errorf("error %q should start with %q and name the timeout", err, want)
	}
}

func TestDialCancel(t *testing.T) {
	port := silentServer(t)
	opts := testKeyOpts(t)
	h := &inventory.Host{Name: "127.0.0.1", Address: "127.0.0.1", Port: port}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, h, opts)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the context's error", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancelled dial took %v (a silent server holds it forever)", d)
	}
}

func TestConnectReportsUnreachableHosts(t *testing.T) {
	opts := testKeyOpts(t)
	opts.ConnectTimeout = 2 * time.Second
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	hosts := []*inventory.Host{
		{Name: "a", Address: "127.0.0.1", Port: closedPort},
		{Name: "b", Address: "127.0.0.1", Port: closedPort},
		{Name: "a", Address: "127.0.0.1", Port: closedPort}, // listed twice, dialled once
	}
	p := Connect(context.Background(), hosts, opts, 1)
	defer p.Close()
	if f := p.Failed(); len(f) != 2 || f["a"] == nil || f["b"] == nil {
		t.Errorf("Failed() = %v", f)
	}
	if _, ok := p.Get("a"); ok {
		t.Error("Get returned a connection for an unreachable host")
	}
}

func resolveT(h *inventory.Host, o Options) *Route {
	r, _ := Resolve(h, o)
	return r
}
