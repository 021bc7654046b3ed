package transport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/ezrestore/ezrestore/inventory"
)

// invHost is a host as the inventory loader makes it: fields plus the
// variables that set them, with where.
func invHost(name string, vars map[string]string) *inventory.Host {
	h := &inventory.Host{Name: name, Address: name, Port: 22, User: "root", Vars: map[string]string{}, VarPos: map[string]inventory.Pos{}}
	line := 10
	for k, v := range vars {
		h.Vars[k] = v
		h.VarPos[k] = inventory.Pos{File: "hosts", Line: line}
		line++
		switch k {
		case "ansible_host":
			h.Address = v
		case "ansible_port":
			fmt.Sscan(v, &h.Port)
		case "ansible_user":
			h.User = v
		case "ansible_ssh_private_key_file":
			h.KeyFile = v
		}
	}
	return h
}

func writeT(t *testing.T, p, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func keyPaths(r *Route) []string {
	var out []string
	for _, k := range r.Keys {
		out = append(out, k.Value)
	}
	return out
}

func khPaths(r *Route) []string {
	var out []string
	for _, k := range r.KnownHosts {
		out = append(out, k.Value)
	}
	return out
}

// Inventory variables beat the ssh arguments, which beat ~/.ssh/config,
// which beats the defaults; IdentityFile adds up in that order.
func TestResolveOrder(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	writeT(t, filepath.Join(home, ".ssh", "config"), `
Host 10.0.0.* !10.0.0.9
    HostName %h.example
    User cfguser
    Port 2200
    IdentityFile ~/.ssh/cfg_key
    UserKnownHostsFile ~/.ssh/cfg_known
    ControlMaster auto
    HostKeyAlias other

Host *
    User lastuser
    StrictHostKeyChecking accept-new
`)
	writeT(t, filepath.Join(home, ".ssh", "id_ed25519"), "x")

	h := invHost("k8s-1", map[string]string{
		"ansible_host":                 "10.0.0.1",
		"ansible_port":                 "2022",
		"ansible_ssh_private_key_file": "/keys/inv",
		"ansible_ssh_common_args":      `-o Port=9999 -o 'User args' -i /keys/args -oUserKnownHostsFile=/kh/args -C -L 1:2:3`,
	})
	r, warns := Resolve(h, Options{IdentityFiles: []string{"/keys/cli"}, KnownHostsFiles: []string{"/cluster/kh"}, Sources: map[string]string{"/keys/cli": "--private-key", "/cluster/kh": "cluster dir"}})

	if r.Address.Value != "10.0.0.1.example" || !strings.HasSuffix(r.Address.From, "config:3") {
		t.Errorf("address %+v", r.Address)
	}
	if r.Port.Value != 2022 || r.Port.From != "ansible_port (hosts:11)" && !strings.HasPrefix(r.Port.From, "ansible_port (hosts:") {
		t.Errorf("port %+v: ansible_port must win over -o Port and ssh_config", r.Port)
	}
	if r.User.Value != "args" || !strings.Contains(r.User.From, "ansible_ssh_common_args (hosts:") || !strings.HasSuffix(r.User.From, "-o User") {
		t.Errorf("user %+v: -o User (no ansible_user) must win over ssh_config", r.User)
	}
	wantKeys := []string{"/keys/inv", "/keys/cli", "/keys/args", filepath.Join(home, ".ssh", "cfg_key"), filepath.Join(home, ".ssh", "id_ed25519")}
	if got := keyPaths(r); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("keys %v\nwant %v", got, wantKeys)
	}
	wantKH := []string{"/kh/args", filepath.Join(home, ".ssh", "cfg_known"), "/cluster/kh"}
	if got := khPaths(r); !reflect.DeepEqual(got[:3], wantKH) {
		t.Errorf("known_hosts %v\nwant %v first", got, wantKH)
	}
	if r.StrictHostKeyChecking.Value != "accept-new" || !strings.HasSuffix(r.StrictHostKeyChecking.From, "config:13") {
		t.Errorf("strict %+v", r.StrictHostKeyChecking)
	}
	// -L and HostKeyAlias are not followed and say so; ControlMaster and -C are harmless.
	var opts []string
	for _, w := range warns {
		opts = append(opts, w.Option)
	}
	joined := strings.Join(opts, ",")
	if !strings.Contains(joined, "-L 1:2:3") || !strings.Contains(joined, "HostKeyAlias") || len(warns) != 2 {
		t.Errorf("warnings %v", warns)
	}
	if !strings.Contains(strings.Join(r.Ignored, "\n"), "ControlMaster") {
		t.Errorf("ignored %v", r.Ignored)
	}

	// The negated pattern: 10.0.0.9 gets only Host *.
	h9 := invHost("k8s-9", map[string]string{"ansible_host": "10.0.0.9"})
	r9, _ := Resolve(h9, Options{})
	if r9.Address.Value != "10.0.0.9" || r9.User.Value != "lastuser" || r9.Port.Value != 22 {
		t.Errorf("negated host: %s", r9)
	}
	// ansible_user beats everything.
	hu := invHost("k8s-2", map[string]string{"ansible_host": "10.0.0.2", "ansible_user": "ops"})
	if ru, _ := Resolve(hu, Options{}); ru.User.Value != "ops" || ru.Become.Value != "sudo -n to root" {
		t.Errorf("ansible_user: %s", ru)
	}
}

func TestResolveProxyJump(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	writeT(t, filepath.Join(home, ".ssh", "config"), `
Host bastion
    HostName 192.0.2.10
    User jumper
    Port 2222
    IdentityFile ~/.ssh/bastion_key
    ProxyJump outer

Host outer
    HostName 192.0.2.1
`)
	for _, args := range []string{"-o ProxyJump=bastion,ops@[2001:db8::1]:23", "-J bastion,ops@[2001:db8::1]:23", "-o 'ProxyJump bastion,ops@[2001:db8::1]:23'"} {
		h := invHost("n1", map[string]string{"ansible_ssh_common_args": args + " -o UserKnownHostsFile=/kh/lab", "ansible_ssh_private_key_file": "/keys/inv"})
		r, warns := Resolve(h, Options{})
		if len(warns) != 0 {
			t.Errorf("%s: warnings %v", args, warns)
		}
		var hops []string
		for _, j := range r.Jumps {
			hops = append(hops, j.Target())
		}
		want := []string{"root@192.0.2.1:22", "jumper@192.0.2.10:2222", "ops@[2001:db8::1]:23"}
		if !reflect.DeepEqual(hops, want) {
			t.Errorf("%s: hops %v, want %v", args, hops, want)
			continue
		}
		// Every hop is checked against the inventory's known_hosts and
		// offered the inventory's key; the bastion also its own key.
		for _, j := range r.Jumps {
			if len(khPaths(j)) == 0 || len(keyPaths(j)) == 0 || khPaths(j)[0] != "/kh/lab" || keyPaths(j)[0] != "/keys/inv" {
				t.Errorf("%s: hop %s: known_hosts %v keys %v", args, j.Target(), khPaths(j), keyPaths(j))
			}
		}
		if got := keyPaths(r.Jumps[1]); !reflect.DeepEqual(got, []string{"/keys/inv", filepath.Join(home, ".ssh", "bastion_key")}) {
			t.Errorf("bastion keys %v", got)
		}
		if !strings.Contains(r.Via(), "via root@192.0.2.1:22 -> jumper@192.0.2.10:2222") {
			t.Errorf("via %q", r.Via())
		}
	}
	// ProxyJump none in the args turns off ssh_config's.
	writeT(t, filepath.Join(home, ".ssh", "config"), "Host *\n  ProxyJump bastion\n  ProxyCommand nc %h %p\n")
	r, _ := Resolve(invHost("n2", map[string]string{"ansible_ssh_common_args": "-o ProxyJump=none"}), Options{})
	if len(r.Jumps) != 0 || r.ProxyCommand.Value != "" {
		t.Errorf("ProxyJump=none: %s", r)
	}
	// kubespray's bastion: a ProxyCommand in the args.
	r, _ = Resolve(invHost("n3", map[string]string{"ansible_ssh_common_args": `-o ProxyCommand="ssh -W %h:%p -p 22 root@192.0.2.5"`}), Options{})
	if r.ProxyCommand.Value != "ssh -W %h:%p -p 22 root@192.0.2.5" || len(r.Jumps) != 0 {
		t.Errorf("ProxyCommand: %s", r)
	}
	if got := proxyCommandLine(r); got != "ssh -W n3:22 -p 22 root@192.0.2.5" {
		t.Errorf("proxy command line %q", got)
	}
}

// StrictHostKeyChecking=no is never honoured: accept-new with a warning.
func TestResolveStrictNo(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	r, warns := Resolve(invHost("n", map[string]string{"ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}), Options{})
	if r.StrictHostKeyChecking.Value != "accept-new" {
		t.Errorf("strict %+v", r.StrictHostKeyChecking)
	}
	if len(warns) != 2 || warns[0].Option != "UserKnownHostsFile" || warns[1].Option != "StrictHostKeyChecking" {
		t.Errorf("warnings %v", warns)
	}
	for _, k := range r.KnownHosts {
		if k.Value == "/dev/null" {
			t.Errorf("/dev/null used as known_hosts")
		}
	}
	r, _ = Resolve(invHost("n", nil), Options{AcceptNewHostKeys: true})
	if r.StrictHostKeyChecking.Value != "accept-new" || r.StrictHostKeyChecking.From != "--accept-new-host-keys" {
		t.Errorf("strict %+v", r.StrictHostKeyChecking)
	}
}

func TestResolveIdentitiesOnlyAndAgent(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "/run/agent.sock")
	writeT(t, filepath.Join(home, ".ssh", "id_rsa"), "x")
	writeT(t, filepath.Join(home, ".ssh", "config"), "Host only\n  IdentitiesOnly yes\n  IdentityFile /keys/only\nHost noagent\n  IdentityAgent none\n")
	r, _ := Resolve(invHost("only", nil), Options{})
	if !r.IdentitiesOnly.Value || !reflect.DeepEqual(keyPaths(r), []string{"/keys/only"}) || r.Agent.Value != "/run/agent.sock" {
		t.Errorf("IdentitiesOnly: %s", r)
	}
	r, _ = Resolve(invHost("noagent", nil), Options{})
	if r.Agent.Value != "" || !reflect.DeepEqual(keyPaths(r), []string{filepath.Join(home, ".ssh", "id_rsa")}) {
		t.Errorf("IdentityAgent none: %s", r)
	}
}

func TestResolveBadArgsWarn(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	_, warns := Resolve(invHost("n", map[string]string{"ansible_ssh_extra_args": "-o 'Unclosed", "ansible_ssh_common_args": "-A -o SomeOption=1 stray -6"}), Options{})
	var got []string
	for _, w := range warns {
		got = append(got, w.Option)
	}
	want := []string{"-A", "SomeOption", "stray", "-6", "-o 'Unclosed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warned %v, want %v", got, want)
	}
	for _, w := range warns {
		if !strings.HasPrefix(w.From, "ansible_ssh_") || !strings.Contains(w.String(), "host n: ") {
			t.Errorf("warning without its source: %v", w)
		}
	}
}

func TestSplitShell(t *testing.T) {
	got, err := splitShell(`-o ProxyCommand="ssh -W %h:%p \"q\"" -o 'A B' C\ D`)
	want := []string{"-o", `ProxyCommand=ssh -W %h:%p "q"`, "-o", "A B", "C D"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("splitShell = %q, %v; want %q", got, err, want)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want Kind
	}{
		{fmt.Errorf("connect: %w", syscall.ECONNREFUSED), KindRefused},
		{fmt.Errorf("connect: %w", syscall.EHOSTUNREACH), KindNoRoute},
		{fmt.Errorf("connect: %w", syscall.ENETUNREACH), KindNoRoute},
		{fmt.Errorf("connect: %w within 1s", errTimeout), KindTimeout},
		{&hopError{hop: "j", err: &ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: "Connection refused"}}, KindRefused},
		{&ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: "connect failed: No route to host"}, KindNoRoute},
		{fmt.Errorf("x: %w", ErrSudoPassword), KindSudoPassword},
		{&becomeError{msg: "x"}, KindBecome},
		{&AuthError{Offered: []OfferedKey{{File: "/k"}}}, KindAuth},
		{&AuthError{}, KindNoKey},
		{&HostKeyError{Kind: KindHostKeyChanged}, KindHostKeyChanged},
		{&proxyError{msg: "x"}, KindProxy},
		{errors.New("something else"), KindOther},
	}
	for i, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("case %d (%v): %v, want %v", i, tt.err, got, tt.want)
		}
		if (&DialError{Kind: tt.want, Addr: "10.0.0.1:22", User: "root", Err: tt.err}).Hint() == "" && tt.want != KindCanceled {
			t.Errorf("case %d: no hint", i)
		}
	}
}
