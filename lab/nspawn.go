package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// mountOverlay mounts the host's root: the shared base below, the host's own
// upper dir above. A mount left from an earlier run is reused.
func (l *Lab) mountOverlay(h Host) error {
	merged := l.merged(h)
	upper, work := l.overlayDirs(h)
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if isMountPoint(merged) {
		return nil
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", l.BaseRoot, upper, work)
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay for %s: %w", h.Machine, err)
	}
	return nil
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isMountPoint(dir string) bool {
	for _, m := range mountsUnder(dir) {
		if m == dir {
			return true
		}
	}
	return false
}

// unmountAll unmounts everything at or below dir.
func unmountAll(dir string) error {
	var errs []error
	for i := 0; i < 3; i++ {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := syscall.Unmount(mp, 0); err != nil && !errors.Is(err, syscall.EINVAL) {
				if err2 := syscall.Unmount(mp, syscall.MNT_DETACH); err2 != nil && !errors.Is(err2, syscall.EINVAL) {
					errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err2))
				}
			}
		}
	}
	if len(mountsUnder(dir)) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// boot starts systemd-nspawn for the host, detached in its own session with
// its console going to a log file, and records its PID. The machine's PID 1
// need not be systemd: the container is not registered with machined and
// gets no scope unit of its own.
func (l *Lab) boot(h Host) error {
	if pid := l.nspawnPID(h); pid > 0 {
		return fmt.Errorf("%s is already running (pid %d)", h.Machine, pid)
	}
	logFile, err := os.OpenFile(l.consoleLog(h), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "\n=== ezrestore lab: booting %s at %s ===\n", h.Machine, time.Now().Format(time.RFC3339))
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// Each host gets a cgroup of its own in every hierarchy systemd tracks
	// processes in: with --keep-unit, nspawn puts the container's
	// "payload" below its own cgroup, and on a machine whose PID 1 is not
	// systemd that is the root, which all hosts would then share (and
	// each host's systemd would stop the others' services).
	cgs, err := l.makeCgroups(h)
	if err != nil {
		return err
	}
	var procs []string
	for _, cg := range cgs {
		procs = append(procs, filepath.Join(cg, "cgroup.procs"))
	}
	cmd := exec.Command("/bin/sh", "-c",
		`for p in $EZR_CGROUP_PROCS; do echo $$ > "$p" || exit 1; done; unset EZR_CGROUP_PROCS; exec systemd-nspawn "$@"`,
		"sh",
		"--boot", "--register=no", "--keep-unit",
		"--machine="+h.Machine,
		"--directory="+l.merged(h),
		"--link-journal=no",
		"--console=passive",
		"--resolv-conf=off",
		"--timezone=off",
	)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "SYSTEMD_LOG_COLOR=0",
		"EZR_CGROUP_PROCS=" + strings.Join(procs, " ")}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start systemd-nspawn for %s: %w", h.Machine, err)
	}
	// Reap it if it ends while this process lives; otherwise init does.
	go func() { _ = cmd.Wait() }()
	return os.WriteFile(l.pidFile(h), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
}

// nspawnPID is the PID of the host's running systemd-nspawn, or 0.
func (l *Lab) nspawnPID(h Host) int {
	data, err := os.ReadFile(l.pidFile(h))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !isNspawnOf(pid, h.Machine) && !midExec(pid) {
		return 0
	}
	return pid
}

// midExec tells whether pid is boot's wrapper caught while it execs
// systemd-nspawn: the kernel then shows an empty command line for a moment,
// which must not be read as the host having died.
func midExec(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) > 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 >= len(s) || s[end+2] == 'Z' {
		return false
	}
	comm := s[open+1 : end]
	return comm == "sh" || comm == "systemd-nspawn"
}

// isNspawnOf tells whether pid is a live systemd-nspawn for machine.
func isNspawnOf(pid int, machine string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	// Until it execs systemd-nspawn, the process is boot's /bin/sh wrapper.
	if len(args) == 0 || filepath.Base(args[0]) != "systemd-nspawn" && args[0] != "/bin/sh" {
		return false
	}
	for _, a := range args {
		if a == "--machine="+machine {
			return true
		}
	}
	return false
}

// nspawnsOf finds every live systemd-nspawn of a machine, with or without a pid file.
func nspawnsOf(machine string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if isNspawnOf(pid, machine) {
			out = append(out, pid)
		}
	}
	return out
}

// descendants returns pid and every process below it.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// killHost powers the host off abruptly: SIGKILL to systemd-nspawn and every
// process below it (the container's init with it, which ends its PID
// namespace). It waits until they are gone.
func (l *Lab) killHost(h Host) error {
	var all []int
	for _, p := range nspawnsOf(h.Machine) {
		all = append(all, descendants(p)...)
	}
	all = append(all, l.cgroupPIDs(h)...)
	for _, p := range all {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	if err := waitGone(h.Machine, all, 10*time.Second); err != nil {
		return err
	}
	return l.removeCgroups(h)
}

// cgroupHierarchies are the mounted hierarchies systemd tracks processes in:
// the unified one on a cgroup v2 machine, name=systemd and the unified one
// on a hybrid v1 machine.
func cgroupHierarchies() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	var out []string
	for _, d := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			out = append(out, d)
		}
	}
	return out
}

func (l *Lab) cgroupDirs(h Host) []string {
	var out []string
	for _, root := range cgroupHierarchies() {
		out = append(out, filepath.Join(root, "ezrestore-lab", l.Opts.Name, h.Machine))
	}
	return append(out, l.v1Cgroups(h)...)
}

// cgroupParents serializes, within this process, creating host cgroups and
// removing their shared parents (the lab's dir and ezrestore-lab): hosts boot
// in parallel, and one host's clean-up must not remove a parent another host
// is creating its dir under.
var cgroupParents sync.Mutex

func (l *Lab) makeCgroups(h Host) ([]string, error) {
	_ = l.removeCgroups(h) // a previous boot's payload
	dirs := l.cgroupDirs(h)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no cgroup hierarchy for systemd found under /sys/fs/cgroup")
	}
	cgroupParents.Lock()
	defer cgroupParents.Unlock()
	for _, d := range dirs {
		var err error
		// Another lab's process may remove the shared ezrestore-lab dir
		// between MkdirAll's steps: that shows as ENOENT, and a retry wins.
		for i := 0; i < 20; i++ {
			if err = os.MkdirAll(d, 0o755); err == nil || !errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err == nil {
			err = initCpuset(d)
		}
		if err != nil {
			return nil, fmt.Errorf("cgroup for %s: %w", h.Machine, err)
		}
	}
	return dirs, nil
}

// cgroupPIDs are the processes in the host's cgroups, at any depth.
func (l *Lab) cgroupPIDs(h Host) []int {
	var pids []int
	for _, d := range l.cgroupDirs(h) {
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if n, err := strconv.Atoi(f); err == nil && n > 0 {
					pids = append(pids, n)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroups removes the host's cgroups, deepest first, once empty.
func (l *Lab) removeCgroups(h Host) error {
	var errs []error
	for _, d := range l.cgroupDirs(h) {
		var dirs []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, dir := range dirs {
			var err error
			for i := 0; i < 50; i++ {
				if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
			}
		}
		// The lab's and the lab group's dirs go when they are empty.
		cgroupParents.Lock()
		_ = syscall.Rmdir(filepath.Dir(d))
		_ = syscall.Rmdir(filepath.Dir(filepath.Dir(d)))
		cgroupParents.Unlock()
	}
	return errors.Join(errs...)
}

// poweroff asks the host's systemd for an orderly shutdown (systemd-nspawn
// turns SIGTERM into SIGRTMIN+3 for the container's init) and kills what is
// left after timeout.
func (l *Lab) poweroff(h Host, timeout time.Duration) error {
	pids := nspawnsOf(h.Machine)
	if len(pids) == 0 {
		return nil
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(nspawnsOf(h.Machine)) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return l.killHost(h)
}

func waitGone(machine string, pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		alive := 0
		for _, p := range pids {
			if processAlive(p) {
				alive++
			}
		}
		if alive == 0 && len(nspawnsOf(machine)) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d processes still alive after SIGKILL", machine, alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}
