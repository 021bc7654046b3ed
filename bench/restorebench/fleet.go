package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/lab"
)

// benchFleet restores the same snapshot on two labs in the same run, one
// with 2 workers and one with many (lighter hosts: stand-in kubelet and
// kube-proxy, but real systemd and sshd each), and compares the whole
// command's wall clock; the bastion's peak RSS with the big fleet is
// reported beside it. The labs come up one after the other (a hundred hosts
// and a second lab at once would measure the machine, not the restore).
func benchFleet(ctx context.Context, bin, snap string, o opts) error {
	type fleet struct {
		nodes  int
		totals []time.Duration
		rss    int64
		cpu    []time.Duration
	}
	fleets := []*fleet{{nodes: 2}, {nodes: o.fleet}}
	for _, f := range fleets {
		base, err := os.MkdirTemp("", "ezrestore-bench-fleet-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(base)
		name := fmt.Sprintf("fl%d-%d", f.nodes, os.Getpid()%10000)
		fmt.Printf("\n== fleet: lab %s with %d workers (3 etcd/master hosts, etcd %s), %d restores\n", name, f.nodes, o.etcd, o.fleetRuns)
		t0 := time.Now()
		l, err := lab.Up(ctx, lab.Options{Name: name, Base: base, EtcdVersion: o.etcd, Nodes: f.nodes})
		if err != nil {
			return err
		}
		fmt.Printf("  lab up in %.0fs; %s\n", time.Since(t0).Seconds(), settle(4*time.Minute))
		for i := 0; i < o.fleetRuns; i++ {
			r, err := restoreOnce(ctx, l, bin, snap)
			if err != nil {
				l.Down(context.Background())
				return err
			}
			fmt.Printf("  run %d: total %.2fs (stop kubelets %.2fs in the background, stop etcd %.2fs, start kube masters %.2fs, start kubelets %.2fs in the background); ezrestore CPU %.2fs, peak RSS %.1f MB; load %s\n",
				i+1, r.total.Seconds(), r.steps["stop kubelet and kube-proxy"].Seconds(), r.steps["stop etcd"].Seconds(),
				r.steps["start kube masters"].Seconds(), r.steps["start kubelet and kube-proxy"].Seconds(), r.cpu.Seconds(), float64(r.maxRSS)/1e6, loadAvg())
			f.totals = append(f.totals, r.total)
			f.rss = max(f.rss, r.maxRSS)
			f.cpu = append(f.cpu, r.cpu)
		}
		if err := l.Down(context.Background()); err != nil {
			return err
		}
	}
	med := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	small, big := med(fleets[0].totals), med(fleets[1].totals)
	ratio := big.Seconds() / small.Seconds()
	add(fmt.Sprintf("restore, %d workers / 2 workers (median of %d)", o.fleet, o.fleetRuns), "<= 1.5",
		fmt.Sprintf("%.2f (%.2fs vs %.2fs)", ratio, big.Seconds(), small.Seconds()), ratio/1.5)
	// The lab's hosts share the bastion's two cores: the wall clock above
	// includes their sshd and systemd work. The bastion's own share:
	add(fmt.Sprintf("ezrestore CPU, %d workers / 2 workers (median)", o.fleet), "-",
		fmt.Sprintf("%.2f (%.2fs vs %.2fs)", med(fleets[1].cpu).Seconds()/med(fleets[0].cpu).Seconds(), med(fleets[1].cpu).Seconds(), med(fleets[0].cpu).Seconds()), 0)
	add(fmt.Sprintf("bastion peak RSS, %d workers (2 workers)", o.fleet), "-",
		fmt.Sprintf("%.1f MB (%.1f MB)", float64(fleets[1].rss)/1e6, float64(fleets[0].rss)/1e6), 0)
	return nil
}

// settle waits until the hosts a lab just booted have quieted down, at most
// max, and says how it went: the machine at least 60% idle over 2 s and the
// 1-minute load average under 2 per core. A hundred hosts keep the machine
// busy for a while after they answer SSH (the load stays near 70 for a
// minute although the CPU is mostly idle: tasks blocked in the kernel), and
// a restore timed then measures their boot, not itself.
func settle(max time.Duration) string {
	t0 := time.Now()
	limit := 2 * float64(runtime.NumCPU())
	for {
		idle := idleFraction(2 * time.Second)
		load := load1()
		if idle >= 0.6 && load < limit {
			return fmt.Sprintf("machine %.0f%% idle, load %.1f after %.0fs", 100*idle, load, time.Since(t0).Seconds())
		}
		if time.Since(t0) > max {
			return fmt.Sprintf("machine still busy (%.0f%% idle, load %.1f) after %.0fs: figures below include that", 100*idle, load, time.Since(t0).Seconds())
		}
	}
}

// load1 is the 1-minute load average.
func load1() float64 {
	f := strings.Fields(loadAvg())
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// idleFraction is the share of CPU time spent idle over d (/proc/stat).
func idleFraction(d time.Duration) float64 {
	read := func() (idle, total float64) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0
		}
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		for i, v := range f[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		return idle, total
	}
	i0, t0 := read()
	time.Sleep(d)
	i1, t1 := read()
	if t1 <= t0 {
		return 0
	}
	return (i1 - i0) / (t1 - t0)
}
