package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/inventory"
)

// Preflight says what this machine lacks to run a lab, or nil.
func Preflight() error {
	var missing []string
	if runtime.GOOS != "linux" {
		return fmt.Errorf("the lab runs on Linux only")
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root (run as root)")
	}
	for _, t := range []struct{ cmd, pkg string }{
		{"systemd-nspawn", "systemd-container"},
		{"ssh", "openssh-client"},
		{"chroot", "coreutils"},
	} {
		if _, err := exec.LookPath(t.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", t.cmd, t.pkg))
		}
	}
	if !baseDone(BaseDir()) {
		if _, err := exec.LookPath("debootstrap"); err != nil {
			missing = append(missing, "debootstrap (Debian package debootstrap) to build the base root filesystem once")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the lab needs: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Up brings a lab up: it builds or reuses the cached base and etcd, boots
// every host, writes the cluster dir, and returns once every etcd member is
// healthy over TLS and every unit is active. Leftovers of a lab of the same
// name whose processes died (mounts may remain) are cleared first; a lab of
// the same name that is fully running is returned as it is.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	start := time.Now()
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	if err := jumpPreflight(opts); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, labRuntime(opts.Name)+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()

	if old, err := Open(opts.Name, ""); err == nil {
		old.Opts.Out = opts.Out
		if old.allRunning() && old.Opts.Base == opts.Base && sameShape(old.Opts, opts) {
			old.logf("%s: already up, checking health", opts.Name)
			if err := old.waitReady(ctx, 60*time.Second); err == nil {
				return old, nil
			}
		}
		old.logf("%s: clearing what an earlier run left", opts.Name)
		if err := old.teardown(); err != nil {
			return nil, fmt.Errorf("clearing leftovers of lab %s: %w", opts.Name, err)
		}
	} else if _, statErr := os.Stat(labRuntime(opts.Name)); statErr == nil {
		// Runtime dir without readable state: clear what can be found.
		l := &Lab{Opts: opts, Hosts: topology(opts)}
		if err := l.teardown(); err != nil {
			return nil, err
		}
	}

	l := &Lab{
		Opts:    opts,
		Dir:     inventory.NewClusterDir(opts.Base, opts.Name),
		Hosts:   topology(opts),
		Block:   blockFor(opts.Name),
		Created: time.Now().UTC(),
	}
	if err := l.checkAddresses(); err != nil {
		return nil, err
	}
	if err := ensureInotify(len(l.Hosts), opts.Out); err != nil {
		return nil, err
	}

	// The base, the etcd build and the kube build are independent and all
	// slow when cold.
	var etcdBin string
	var wg sync.WaitGroup
	var baseErr, etcdErr, kubeErr error
	wg.Add(3)
	go func() { defer wg.Done(); l.BaseRoot, baseErr = EnsureBase(ctx, opts.Out) }()
	go func() {
		defer wg.Done()
		etcdBin, l.EtcdRelease, etcdErr = EnsureEtcd(ctx, opts.EtcdVersion, opts.Out)
	}()
	go func() {
		defer wg.Done()
		if l.realKube() {
			l.KubeBin, kubeErr = EnsureKube(ctx, opts.Out)
		}
	}()
	wg.Wait()
	if err := errors.Join(baseErr, etcdErr, kubeErr); err != nil {
		return nil, err
	}
	if opts.EtcdVersion == "" {
		l.EtcdRelease = DebianEtcdVersion(l.BaseRoot)
	}
	if l.kubeadm() {
		if err := l.ensureKubeadm(ctx, etcdBin); err != nil {
			return nil, err
		}
	}

	if err := os.MkdirAll(l.runtime(), 0o700); err != nil {
		return nil, err
	}
	if err := l.saveState(); err != nil {
		return nil, err
	}
	fail := func(err error) (*Lab, error) {
		l.logf("%s: up failed: %v (consoles: %s/hosts/*/console.log; `ezrestore lab down --name %s` clears it)", l.Opts.Name, err, l.runtime(), l.Opts.Name)
		return nil, err
	}
	if err := l.buildBindLib(ctx); err != nil {
		return fail(err)
	}

	s := &hostSecrets{hostKeys: map[string]*sshKey{}}
	var etcdIPs []string
	for _, h := range l.EtcdHosts() {
		etcdIPs = append(etcdIPs, h.Address)
	}
	if s.certs, err = newCerts(etcdIPs); err != nil {
		return fail(err)
	}
	if l.realKube() {
		var masterIPs []string
		for _, h := range l.Masters() {
			masterIPs = append(masterIPs, h.Address)
		}
		if err := s.certs.addKubeCerts(masterIPs); err != nil {
			return fail(err)
		}
	}
	if l.kubeadm() {
		if s.kubeadm, err = s.certs.addKubeadmCerts(l.Hosts); err != nil {
			return fail(err)
		}
	}
	if s.clientKey, err = newSSHKey("ezrestore-lab-" + opts.Name); err != nil {
		return fail(err)
	}
	for _, h := range l.Hosts {
		if s.hostKeys[h.Address], err = newSSHKey("root@" + h.Machine); err != nil {
			return fail(err)
		}
	}
	if err := l.writeClusterDir(s); err != nil {
		return fail(err)
	}

	errs := make([]error, len(l.Hosts))
	for i, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.mountOverlay(h); err != nil {
				errs[i] = err
				return
			}
			if err := l.writeHostFiles(h, l.merged(h), s, etcdBin); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.Machine, err)
				return
			}
			if err := l.boot(h); err != nil {
				errs[i] = err
				return
			}
			l.logf("%s %s: booting (%s)", h.Address, h.Machine, strings.Join(h.Groups, ","))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	if err := l.waitReady(ctx, 3*time.Minute); err != nil {
		return fail(err)
	}
	l.logf("%s: up in %s: %d hosts, etcd %s with TLS, cluster dir %s", opts.Name,
		time.Since(start).Round(100*time.Millisecond), len(l.Hosts), l.EtcdRelease, l.Dir.Path)
	return l, nil
}

func sameShape(a, b Options) bool {
	return a.Etcd == b.Etcd && a.Nodes == b.Nodes && a.Masters == b.Masters &&
		a.SeparateEtcd == b.SeparateEtcd && a.EtcdVersion == b.EtcdVersion && a.EtcdWALDir == b.EtcdWALDir &&
		a.JumpHost == b.JumpHost && a.Kubeadm == b.Kubeadm &&
		a.Kube == b.Kube
}

// checkAddresses refuses an address block that another lab holds or on
// which something already listens.
func (l *Lab) checkAddresses() error {
	ents, _ := os.ReadDir(RuntimeDir)
	for _, e := range ents {
		if !e.IsDir() || e.Name() == l.Opts.Name {
			continue
		}
		data, err := os.ReadFile(filepath.Join(RuntimeDir, e.Name(), "state.json"))
		if err != nil {
			continue
		}
		var other Lab
		if json.Unmarshal(data, &other) == nil && other.Block == l.Block {
			return fmt.Errorf("lab %s would use 127 block %s.0/24, which lab %s holds; choose another name", l.Opts.Name, l.Block, other.Opts.Name)
		}
	}
	for _, h := range l.Hosts {
		ports := []string{"22", "2379", "2380"}
		if l.realKube() && h.In(inventory.GroupMaster) {
			ports = append(ports, kubePorts()...)
		}
		if h.Kubeadm {
			ports = append(ports, kubeadmPorts(h)...)
		}
		for _, port := range ports {
			addr := net.JoinHostPort(h.Address, port)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("lab %s: %s is in use by something else: %w", l.Opts.Name, addr, err)
			}
			ln.Close()
		}
	}
	return nil
}

// allRunning reports whether every host's systemd-nspawn is alive.
func (l *Lab) allRunning() bool {
	for _, h := range l.Hosts {
		if l.nspawnPID(h) == 0 {
			return false
		}
	}
	return true
}

// waitReady waits for sshd on every host, every lab unit active, a
// healthy etcd cluster and, with the real control plane, every apiserver
// ready (waitAPI).
func (l *Lab) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(l.Hosts))
	for i, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.waitSSH(ctx, h); err != nil {
				errs[i] = err
				return
			}
			l.logf("%s %s: sshd answers", h.Address, h.Machine)
			if err := l.waitUnits(ctx, h); err != nil {
				errs[i] = err
				return
			}
			l.logf("%s %s: units active: %s", h.Address, h.Machine, strings.Join(h.Units(), " "))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var last *Health
	for {
		last = l.EtcdHealth(ctx)
		if last.Healthy {
			l.logf("%s: etcd healthy:\n%s", l.Opts.Name, strings.TrimRight(last.String(), "\n"))
			if l.realKube() {
				return l.waitAPI(ctx)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd not healthy in time:\n%s", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitSSH waits until the host accepts a root login with the lab's key.
func (l *Lab) waitSSH(ctx context.Context, h Host) error {
	var lastErr error
	for {
		if l.nspawnGone(h) {
			return fmt.Errorf("%s %s: systemd-nspawn ended; last console lines (%s):\n%s", h.Address, h.Machine, l.consoleLog(h), consoleTail(l.consoleLog(h), 20))
		}
		if err := dialOnce(h.Address + ":22"); err != nil {
			lastErr = err
		} else if _, err := l.Exec(ctx, h.Address, "true"); err != nil {
			lastErr = err
		} else {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s: sshd did not answer: %v", h.Address, h.Machine, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (l *Lab) waitUnits(ctx context.Context, h Host) error {
	var last map[string]string
	var lastErr error
	for {
		st, err := l.UnitStates(ctx, h)
		if err == nil {
			last = st
			ok := true
			for _, s := range st {
				if s != "active" {
					ok = false
				}
			}
			if ok {
				return nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s: units not active in time: %v %v", h.Address, h.Machine, last, lastErr)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Kill powers host addr off abruptly (SIGKILL to its whole process tree), as
// a power loss would. Its disk (the overlay) stays.
func (l *Lab) Kill(ctx context.Context, addr string) error {
	h, err := l.Host(addr)
	if err != nil {
		return err
	}
	if err := l.killHost(h); err != nil {
		return err
	}
	l.logf("%s %s: killed", h.Address, h.Machine)
	return nil
}

// Start boots host addr again and returns once its sshd answers (it does not
// wait for etcd's health). Starting a running host is a no-op.
func (l *Lab) Start(ctx context.Context, addr string) error {
	h, err := l.Host(addr)
	if err != nil {
		return err
	}
	if l.nspawnPID(h) == 0 {
		if err := l.mountOverlay(h); err != nil {
			return err
		}
		if err := l.boot(h); err != nil {
			return err
		}
		l.logf("%s %s: booting", h.Address, h.Machine)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := l.waitSSH(ctx, h); err != nil {
		return err
	}
	l.logf("%s %s: sshd answers", h.Address, h.Machine)
	return nil
}

// Running reports whether host addr's systemd-nspawn is alive.
func (l *Lab) Running(addr string) bool {
	h, err := l.Host(addr)
	return err == nil && l.nspawnPID(h) > 0
}

// Down stops every host (orderly poweroff, then SIGKILL after a timeout),
// unmounts the overlays, removes the lab's runtime state and the files the
// lab wrote into the cluster dir. Files others wrote there (backup/,
// restores/) are kept.
func (l *Lab) Down(ctx context.Context) error {
	unlock, err := lockFile(ctx, labRuntime(l.Opts.Name)+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	var wg sync.WaitGroup
	for _, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if len(nspawnsOf(h.Machine)) > 0 {
				l.logf("%s %s: powering off", h.Address, h.Machine)
			}
			// The lab is discarded: an etcd leader whose peers are gone may spend
			// seconds trying to hand over leadership, so the wait is short.
			_ = l.poweroff(h, 3*time.Second)
		}()
	}
	wg.Wait()
	if err := l.teardown(); err != nil {
		return err
	}
	_ = os.Remove(labRuntime(l.Opts.Name) + ".lock")
	l.logf("%s: down", l.Opts.Name)
	return nil
}

// teardown kills whatever of the lab still runs, unmounts, and removes the
// runtime state and the lab's cluster dir files.
func (l *Lab) teardown() error {
	var errs []error
	for _, h := range l.Hosts {
		if err := l.killHost(h); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unmountAll(l.runtime()); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(mountsUnder(l.runtime())) == 0 {
		if err := os.RemoveAll(l.runtime()); err != nil {
			return err
		}
	}
	if l.Dir.Path != "" {
		l.removeClusterDir()
	}
	return nil
}

// consoleTail is the end of a host's console log, for errors that must stay
// readable after the lab's state is cleared.
func consoleTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "  " + strings.Join(all, "\n  ")
}

// nspawnGone is true when the host's systemd-nspawn is seen gone three times
// over 200 ms: one look can land in the instant it execs.
func (l *Lab) nspawnGone(h Host) bool {
	for i := 0; i < 3; i++ {
		if l.nspawnPID(h) != 0 {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// inotifyInstances is where the kernel bounds inotify instances per user:
// every host's systemd takes several, and Debian's default of 128 stops a lab
// of a few dozen hosts ("Failed to allocate manager object: Too many open files").
const inotifyInstances = "/proc/sys/fs/inotify/max_user_instances"

// ensureInotify raises the per-user inotify instance limit for a lab of n
// hosts, never lowering it, and says so.
func ensureInotify(n int, out io.Writer) error {
	need := 128 + 16*n
	b, err := os.ReadFile(inotifyInstances)
	if err != nil {
		return nil // not Linux's procfs: nothing to tune
	}
	have, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || have >= need {
		return nil
	}
	if err := os.WriteFile(inotifyInstances, []byte(strconv.Itoa(need)), 0o644); err != nil {
		return fmt.Errorf("%d hosts need fs.inotify.max_user_instances >= %d (it is %d): %w", n, need, have, err)
	}
	logf(out, "raised fs.inotify.max_user_instances from %d to %d for %d hosts", have, need, n)
	return nil
}
