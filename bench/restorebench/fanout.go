package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/lab"
	"github.com/ezrestore/ezrestore/transport"
)

// benchFanOut sends the snapshot to the three etcd hosts, stage by stage so
// a slow figure can be traced to its cause: the bastion's compressor alone
// (one core, every core), the host's side alone (inflate, write and hash on
// one host, from a file already there), the whole stream and the one-pass
// uncompressed push on the unshaped link, then the stream against three
// parallel scp over the shaped link. Beside each: CPU seconds of this
// process and of the whole machine (the lab's hosts share its cores).
func benchFanOut(ctx context.Context, l *lab.Lab, snap string, o opts) error {
	fi, err := os.Stat(snap)
	if err != nil {
		return err
	}
	size := fi.Size()
	sum, err := fileSHA256(snap)
	if err != nil {
		return err
	}
	zr, err := zstdRatio(snap)
	if err != nil {
		return err
	}
	cl, err := cluster.Open(cluster.Selector{Base: l.Opts.Base, Cluster: l.Opts.Name})
	if err != nil {
		return err
	}
	var hosts []*inventory.Host
	for _, h := range l.EtcdHosts() {
		hosts = append(hosts, cl.Inventory.Host(h.Address))
	}
	pool := cl.Connect(ctx, hosts, 20)
	defer pool.Close()
	var conns []transport.Conn
	for _, h := range hosts {
		c, ok := pool.Get(h.Name)
		if !ok {
			return fmt.Errorf("host %s: %v", h.Name, pool.Failed()[h.Name])
		}
		conns = append(conns, c)
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	mib := size >> 20
	remote := "/root/fanout.db"
	clean := func() {
		for _, h := range l.EtcdHosts() {
			l.Exec(ctx, h.Address, "rm -f /root/fanout.db /root/fanout.db.part /root/fanout.gz")
		}
	}
	clean()
	defer clean()
	fmt.Printf("\n== fan-out of %s (Kubernetes-shaped snapshot) to %d etcd hosts, stage by stage\n", bytesize.Human(size), len(conns))

	// 1. The bastion's compressor alone, to a file kept for stage 2.
	gz := filepath.Join(os.TempDir(), fmt.Sprintf("restorebench-%d.gz", os.Getpid()))
	defer os.Remove(gz)
	var wire int64
	for _, workers := range []int{1, 0} {
		src, err := os.Open(snap)
		if err != nil {
			return err
		}
		dst, err := os.OpenFile(gz, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			src.Close()
			return err
		}
		m := startMeter()
		_, err = transport.GzipMembers(ctx, src, dst, workers)
		src.Close()
		dst.Close()
		if err != nil {
			return err
		}
		st, _ := os.Stat(gz)
		wire = st.Size()
		what := "one core"
		if workers == 0 {
			what = "every core"
		}
		fmt.Printf("  bastion compress (%s): %s, ratio %.2f\n", what, m.rate(size), float64(size)/float64(wire))
	}

	// 2. The host's side alone, on one host, from the compressed file
	// copied there first (unshaped).
	h0 := l.EtcdHosts()[0].Address
	if err := scp(ctx, l, h0, gz, "/root/fanout.gz"); err != nil {
		return err
	}
	for _, python := range []bool{true, false} {
		cmd := transport.HostSinkCommand(remote, 0o600, size, sum, true, python)
		timed := `TIMEFORMAT="%R %U %S"; { time sh -c "$1" < /root/fanout.gz > /dev/null; } 2>&1 | tail -1`
		out, err := l.Exec(ctx, h0, "bash -c "+transport.Quote(timed)+" _ "+transport.Quote(cmd))
		if err != nil {
			return err
		}
		f := strings.Fields(string(out))
		if len(f) != 3 {
			return fmt.Errorf("host side on %s: %q", h0, out)
		}
		real, _ := strconv.ParseFloat(f[0], 64)
		user, _ := strconv.ParseFloat(f[1], 64)
		sys, _ := strconv.ParseFloat(f[2], 64)
		form := "python3 (zlib + OpenSSL sha256)"
		if !python {
			form = "shell (gzip -dc | tee | sha256sum)"
		}
		fmt.Printf("  host side on %s, %s: %.0f MiB/s, %.1fs CPU in %.1fs\n", h0, form, float64(size)/real/(1<<20), user+sys, real)
		l.Exec(ctx, h0, "rm -f "+remote)
	}
	l.Exec(ctx, h0, "rm -f /root/fanout.gz")

	// 3. The unshaped link: the compressed stream, then the uncompressed
	// one-pass push, to the three hosts at once.
	stream := func() (time.Duration, meter, error) {
		m := startMeter()
		t0 := time.Now()
		res := transport.UploadGzip(ctx, conns, snap, remote, 0o600, sum, nil)
		d := time.Since(t0)
		for _, r := range res {
			if r.Err != nil {
				return d, m, fmt.Errorf("host %s: %w", r.Host, r.Err)
			}
			wire = r.Wire
		}
		clean()
		return d, m, nil
	}
	raw := func() (time.Duration, meter, error) {
		m := startMeter()
		t0 := time.Now()
		errs := make([]error, len(conns))
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = transport.Push(ctx, c, snap, remote, 0o600, sum, nil)
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		for _, e := range errs {
			if e != nil {
				return d, m, e
			}
		}
		clean()
		return d, m, nil
	}
	d, m, err := stream()
	if err != nil {
		return err
	}
	fmt.Printf("  unshaped, gzip stream to 3 hosts: %.1fs (%s each), %s\n", d.Seconds(), transport.Rate(size, d), m.cpu())
	unshapedGz := d
	d, m, err = raw()
	if err != nil {
		return err
	}
	fmt.Printf("  unshaped, uncompressed one-pass push to 3 hosts: %.1fs (%s each), %s\n", d.Seconds(), transport.Rate(size, d), m.cpu())
	add(fmt.Sprintf("%d MiB to 3 hosts, unshaped: gzip / uncompressed", mib), "-", fmt.Sprintf("%.2f (%.1fs vs %.1fs)", unshapedGz.Seconds()/d.Seconds(), unshapedGz.Seconds(), d.Seconds()), 0)

	// 4. The shaped link: three parallel scp, then the stream.
	if err := l.Shape(ctx, lab.ShapeSpec{Rate: o.rate, Delay: o.delay}); err != nil {
		return err
	}
	defer l.Unshape(context.Background())
	fmt.Printf("\n== fan-out of %s to %d etcd hosts over a %s link, delay %v (htb on lo)\n", bytesize.Human(size), len(conns), o.rate, o.delay)
	shaped0, _ := lab.ShapedBytes(ctx)
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range l.EtcdHosts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = scp(ctx, l, h.Address, snap, remote)
		}()
	}
	wg.Wait()
	scpTime := time.Since(t0)
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	clean()
	shaped1, _ := lab.ShapedBytes(ctx)
	fmt.Printf("  3x scp: %.1fs, %s through the shaped class\n", scpTime.Seconds(), bytesize.Human(shaped1-shaped0))
	ourTime, m, err := stream()
	if err != nil {
		return err
	}
	shaped2, _ := lab.ShapedBytes(ctx)
	fmt.Printf("  ezrestore gzip stream: %.1fs (%s of file each), %s through the shaped class, %s\n",
		ourTime.Seconds(), transport.Rate(size, ourTime), bytesize.Human(shaped2-shaped1), m.cpu())
	if o.shapedRaw {
		d, m, err := raw()
		if err != nil {
			return err
		}
		fmt.Printf("  ezrestore uncompressed one-pass push: %.1fs, %s\n", d.Seconds(), m.cpu())
	}
	add(fmt.Sprintf("%d MiB to 3 hosts over %s: ezrestore / 3x scp", mib, o.rate), "<= 0.5", fmt.Sprintf("%.2f (%.1fs vs %.1fs)", ourTime.Seconds()/scpTime.Seconds(), ourTime.Seconds(), scpTime.Seconds()), ourTime.Seconds()/scpTime.Seconds()/0.5)
	add("compression on k8s-shaped snapshot: gzip-1 members / zstd-fastest", "-", fmt.Sprintf("%.2fx / %.2fx", float64(size)/float64(wire), zr), 0)
	add("CPU during the shaped compressed push", "-", m.cpu(), 0)
	return nil
}

// scp copies a local file to addr with OpenSSH's scp and the lab's key.
func scp(ctx context.Context, l *lab.Lab, addr, local, remote string) error {
	args := l.SSHArgs(addr)
	dest := args[len(args)-1] + ":" + remote
	cmd := exec.CommandContext(ctx, "scp", append(append([]string{"-q"}, args[:len(args)-1]...), local, dest)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("scp to %s: %v: %s", addr, err, out)
	}
	return nil
}

// meter reads this process's CPU time and the machine's busy time.
type meter struct {
	t0          time.Time
	self0, all0 time.Duration
}

func startMeter() meter {
	return meter{t0: time.Now(), self0: selfCPU(), all0: machineCPU()}
}

func (m meter) rate(n int64) string {
	d := time.Since(m.t0)
	return fmt.Sprintf("%s, %.1fs CPU in %.1fs", transport.Rate(n, d), (selfCPU() - m.self0).Seconds(), d.Seconds())
}

// cpu says what the bastion (this process) and the whole machine (the
// lab's hosts, and anyone else's work) spent since the start.
func (m meter) cpu() string {
	d := time.Since(m.t0)
	return fmt.Sprintf("CPU: bastion %.1fs, machine %.1fs of %.1fs x 2 cores (load %s)", (selfCPU() - m.self0).Seconds(), (machineCPU() - m.all0).Seconds(), d.Seconds(), loadAvg())
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}

// machineCPU is the busy time of every core from /proc/stat (user, nice,
// system, irq, softirq; USER_HZ is 100 on Linux).
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		if i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
