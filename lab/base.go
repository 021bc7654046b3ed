package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Where the lab keeps what it builds once and what each lab owns at run time.
// Both are outside the repository and outside any cluster dir.
var (
	CacheDir   = "/var/cache/ezrestore"   // base-<hash>/ root filesystems and etcd builds
	RuntimeDir = "/var/lib/ezrestore/lab" // <name>/: overlays, pid files, logs, state
)

// The base root filesystem every host's overlay sits on. Its recipe is the
// debootstrap call plus the script run in it afterwards; the cache directory
// is named by a hash of both, so a changed recipe builds a new base.
const (
	baseSuite   = "bookworm"
	baseVariant = "minbase"
)

var basePackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo",
	"etcd-server", "etcd-client", "iproute2", "procps",
	// Ansible's modules need a Python on the managed hosts.
	"python3",
	// kubeadm-shaped labs (lab up --kubeadm, kubeadm.go): a real container
	// runtime for the kubelet, and a static busybox the lab's images are
	// made of. Other labs never start them.
	"containerd", "runc", "busybox-static",
}

// baseSetup runs inside the fresh root filesystem (chroot). Everything that
// differs per host (keys, addresses, units) is written later into the host's
// overlay, so this only removes what must not be shared or must never run.
const baseSetup = `set -eu
# Per-host identity is written into each host's overlay.
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# Debian's etcd (user etcd, default config on localhost) must never start:
# etcd hosts get /etc/systemd/system/etcd.service, the others a mask.
rm -f /etc/systemd/system/multi-user.target.wants/etcd.service
printf '# ezrestore lab: etcd is configured in /etc/systemd/system/etcd.service only.\n' > /etc/default/etcd
rm -rf /var/lib/etcd
mkdir -m 0700 /var/lib/etcd
# containerd runs on kubeadm-shaped lab hosts only, which enable it.
rm -f /etc/systemd/system/multi-user.target.wants/containerd.service
# Nothing may reach outside the machine or bind fixed ports on shared loopback.
for u in apt-daily.timer apt-daily-upgrade.timer systemd-timesyncd.service \
	systemd-networkd.service systemd-networkd.socket systemd-resolved.service \
	systemd-networkd-wait-online.service ssh.socket e2scrub_all.timer \
	e2scrub_reap.service fstrim.timer dpkg-db-backup.timer; do
	ln -sf /dev/null "/etc/systemd/system/$u"
done
# Root logs in by key only; ops is a sudo user for testing become.
usermod -p '*' root
useradd -m -s /bin/bash -u 1000 -U ops
usermod -p '*' ops
printf 'ops ALL=(ALL) NOPASSWD:ALL\n' > /etc/sudoers.d/ops
chmod 0440 /etc/sudoers.d/ops
# kubeasz's layout.
mkdir -p /opt/kube/bin /etc/kubernetes/ssl
chmod 0700 /etc/kubernetes/ssl
apt-get clean
rm -rf /var/lib/apt/lists/*
`

// baseRecipeVersion is bumped when the way the recipe is applied changes
// without the recipe's text changing.
const baseRecipeVersion = "1"

// BaseHash names the base recipe.
func BaseHash() string {
	h := sha256.New()
	fmt.Fprintf(h, "v%s\n%s\n%s\n%s\n%s\n", baseRecipeVersion, baseSuite, baseVariant,
		strings.Join(basePackages, ","), baseSetup)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// BaseDir is where the base for the current recipe is cached.
func BaseDir() string {
	return filepath.Join(CacheDir, "lab", "base-"+BaseHash())
}

// EnsureBase returns the cached base root filesystem, building it first when
// the current recipe has none. The build goes to a temporary directory renamed
// into place at the end, so a killed build never looks finished; a lock keeps
// concurrent callers from building it twice.
func EnsureBase(ctx context.Context, out io.Writer) (string, error) {
	dir := BaseDir()
	if baseDone(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if baseDone(dir) {
		return dir, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("building the lab's base root filesystem needs debootstrap (apt-get install debootstrap)")
	}
	// Leftovers without the marker are builds that did not finish (killed
	// while holding the lock, which we now hold).
	_ = os.RemoveAll(dir)
	tmpPrefix := filepath.Join(filepath.Dir(dir), ".tmp-"+filepath.Base(dir)+"-")
	if old, _ := filepath.Glob(tmpPrefix + "*"); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	tmp := fmt.Sprintf("%s%d", tmpPrefix, os.Getpid())
	defer os.RemoveAll(tmp)
	start := time.Now()
	logf(out, "base: building %s (debootstrap %s %s, about a minute)", dir, baseSuite, baseVariant)
	args := []string{"--variant=" + baseVariant, "--include=" + strings.Join(basePackages, ","), baseSuite, tmp}
	if m := os.Getenv("EZRESTORE_LAB_MIRROR"); m != "" {
		args = append(args, m)
	}
	logPath := dir + ".build.log"
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("debootstrap failed (%v); its log is %s", err, logPath)
	}
	cmd = exec.CommandContext(ctx, "chroot", tmp, "/bin/sh", "-c", baseSetup)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("setting up the base failed (%v); its log is %s", err, logPath)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".ezrestore-base"), []byte(BaseHash()+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	logf(out, "base: built in %s", time.Since(start).Round(time.Second))
	return dir, nil
}

func baseDone(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".ezrestore-base"))
	return err == nil
}
