package lab

// A lab brought up with Options.JumpHost has one more host, the jump host
// (<name>-jump1 at <block>.10), and every other host accepts SSH only from
// it: their sshd allows logins only from the jump host's address
// (AllowUsers *@<jump address>), and the hosts file reaches them with
// ansible_ssh_common_args '-o ProxyJump=root@<jump address>', as a bastion
// setup does.
//
// All hosts share the machine's network namespace, where every connection
// to a 127.x address leaves from 127.0.0.1 unless the program binds another
// source: the jump host's sshd would then forward from 127.0.0.1 like
// everyone else. On a real network a jump host's connections leave from its
// own address; the lab reproduces that with a small library preloaded into
// every process of the jump host (/etc/ld.so.preload in its root only) that
// binds an unbound TCP socket to the jump host's address before it connects
// to a 127.x address. It is built with the machine's C compiler when the lab
// comes up. Nothing else on the machine changes (no routes, no firewall).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// groupJump is the lab's own group for the jump host; the inventory does
// not list it (a kubeasz inventory names only the cluster's hosts).
const groupJump = "jump"

// jumpHost is the jump host of a lab with Options.JumpHost.
func jumpHost(o Options) Host {
	return Host{Machine: o.Name + "-jump1", Address: blockFor(o.Name) + ".10", Groups: []string{groupJump}}
}

// withJumpHost adds the jump host to a topology when the options ask for one.
func withJumpHost(o Options, hosts []Host) []Host {
	if !o.JumpHost {
		return hosts
	}
	return append(hosts, jumpHost(o))
}

// Jump is the lab's jump host, if it has one.
func (l *Lab) Jump() (Host, bool) {
	for _, h := range l.Hosts {
		if h.In(groupJump) {
			return h, true
		}
	}
	return Host{}, false
}

// behindJump is true for the hosts reached only through the jump host.
func (l *Lab) behindJump(h Host) bool {
	_, ok := l.Jump()
	return ok && !h.In(groupJump)
}

// sshCommonArgs is the hosts file's ansible_ssh_common_args.
func (l *Lab) sshCommonArgs() string {
	args := fmt.Sprintf("-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes", l.Dir.KnownHosts())
	if j, ok := l.Jump(); ok {
		args += " -o ProxyJump=root@" + j.Address
	}
	return args
}

// jumpSSHArgs are the OpenSSH options that reach host h through the jump
// host, with the lab's key and strict host-key checking at both hops; nil
// for a host reached directly.
func (l *Lab) jumpSSHArgs(h Host) []string {
	j, ok := l.Jump()
	if !ok || !l.behindJump(h) {
		return nil
	}
	hop := l.directSSHArgs()
	var q []string
	for _, a := range append(append([]string{"ssh"}, hop...), "-W", "%h:%p", "root@"+j.Address) {
		q = append(q, shellQuote(a))
	}
	return []string{"-o", "ProxyCommand=" + strings.Join(q, " ")}
}

// shellQuote quotes for the sh that runs a ProxyCommand; %h and %p stay
// outside quotes for ssh to substitute.
func shellQuote(s string) string {
	if s == "%h:%p" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// jumpSSHDConfig is the sshd drop-in of a host behind the jump host.
func jumpSSHDConfig(jumpAddr string) string {
	return fmt.Sprintf(`# ezrestore lab: this host is reached only through the jump host %[1]s.
AllowUsers *@%[1]s
`, jumpAddr)
}

// writeJumpFiles writes what the jump setup needs into host h's root: the
// sshd restriction on a host behind the jump host, the source-binding
// library on the jump host.
func (l *Lab) writeJumpFiles(h Host, root string) error {
	j, ok := l.Jump()
	if !ok {
		return nil
	}
	if l.behindJump(h) {
		return writeFile(filepath.Join(root, "etc/ssh/sshd_config.d/ezrestore-lab-jump.conf"), []byte(jumpSSHDConfig(j.Address)), 0o644)
	}
	lib := "/usr/local/lib/ezrestore-lab-bindsrc.so"
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(lib)), 0o755); err != nil {
		return err
	}
	if err := copyFile(l.bindLibPath(), filepath.Join(root, lib), 0o755); err != nil {
		return err
	}
	return writeFile(filepath.Join(root, "etc/ld.so.preload"), []byte(lib+"\n"), 0o644)
}

func (l *Lab) bindLibPath() string { return filepath.Join(l.runtime(), "bindsrc.so") }

// bindSource is the preloaded library of the jump host (see the top of the
// file). The source address is compiled in.
const bindSource = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
	static connect_fn next;
	if (!next)
		next = (connect_fn)dlsym(RTLD_NEXT, "connect");
	if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *dst = (const struct sockaddr_in *)addr;
		struct sockaddr_in cur;
		socklen_t cl = sizeof cur;
		int type = 0;
		socklen_t tl = sizeof type;
		if ((ntohl(dst->sin_addr.s_addr) >> 24) == 127 &&
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM &&
		    getsockname(fd, (struct sockaddr *)&cur, &cl) == 0 && cur.sin_family == AF_INET &&
		    cur.sin_addr.s_addr == htonl(INADDR_ANY) && cur.sin_port == 0) {
			struct sockaddr_in src;
			memset(&src, 0, sizeof src);
			src.sin_family = AF_INET;
			if (inet_pton(AF_INET, EZRESTORE_LAB_SOURCE, &src.sin_addr) == 1) {
				int saved = errno;
				(void)bind(fd, (struct sockaddr *)&src, sizeof src);
				errno = saved;
			}
		}
	}
	return next(fd, addr, len);
}
`

// buildBindLib compiles the jump host's library for its address.
func (l *Lab) buildBindLib(ctx context.Context) error {
	j, ok := l.Jump()
	if !ok {
		return nil
	}
	if err := os.MkdirAll(l.runtime(), 0o700); err != nil {
		return err
	}
	src := filepath.Join(l.runtime(), "bindsrc.c")
	if err := writeFile(src, []byte(bindSource), 0o600); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "cc", "-shared", "-fPIC", "-O2", "-Wall",
		`-DEZRESTORE_LAB_SOURCE="`+j.Address+`"`, "-o", l.bindLibPath(), src, "-ldl").CombinedOutput()
	if err != nil {
		return fmt.Errorf("build the jump host's source-binding library (cc): %v: %s", err, out)
	}
	return nil
}

// jumpPreflight says what a lab with a jump host lacks on this machine.
func jumpPreflight(o Options) error {
	if !o.JumpHost {
		return nil
	}
	if _, err := exec.LookPath("cc"); err != nil {
		return fmt.Errorf("--jump-host needs a C compiler (cc, Debian package gcc) to build the jump host's source-binding library")
	}
	return nil
}
