// Command restorebench measures `ezrestore restore` on the lab and prints one
// table: each measure, its target, the figure, figure/target and the
// machine's load average when it was taken.
//
//   - restores of a small snapshot (16 MiB by default), each the whole
//     `ezrestore restore` command as a user runs it: its wall clock, its
//     "stop etcd" step, and the floor (transfer + restore tool + etcd start
//     to healthy, from the run record's events.jsonl) against the total;
//     then (-seq-runs) the same with the push after the stops instead of
//     beside them, for the stop on its own and what the overlap buys;
//   - the snapshot fan-out to the three etcd hosts over a shaped link (the
//     lab's `shape`, htb on lo): ezrestore's compressed stream
//     (transport.UploadGzip) beside three parallel OpenSSH scp of the file,
//     the compression ratio on Kubernetes-shaped data and the bastion's CPU;
//   - optionally (-big-mib) one restore of a big snapshot: total/floor and
//     the peak RSS of the ezrestore process.
//
// Snapshots hold Kubernetes-shaped objects (k8sdata.go), written through a
// local etcd and cached in -cache. Run it with `make bench` (root, on a
// machine that can run the lab). Times are never asserted: the machine is
// shared, read the load average beside each figure. It is imported by
// nothing.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"gopkg.in/yaml.v3"

	"github.com/ezrestore/ezrestore/internal/bytesize"
	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
	"github.com/ezrestore/ezrestore/lab"
	"github.com/ezrestore/ezrestore/playbooks"
)

func main() {
	o := opts{}
	flag.StringVar(&o.cache, "cache", "/var/cache/ezrestore/bench", "where generated snapshots are kept between runs")
	flag.StringVar(&o.bin, "bin", "bin/ezrestore", "the ezrestore binary to run")
	flag.Int64Var(&o.smallMiB, "mib", 16, "size of the snapshot restored -runs times")
	flag.IntVar(&o.runs, "runs", 3, "restores of the small snapshot")
	flag.IntVar(&o.seqRuns, "seq-runs", 3, "restores of the small snapshot with the push after the stops, not beside them (0: skip)")
	flag.Int64Var(&o.fanMiB, "fanout-mib", 512, "size of the snapshot sent over the shaped link (0: skip)")
	flag.StringVar(&o.rate, "rate", "1gbit", "rate of the shaped link")
	flag.DurationVar(&o.delay, "delay", 0, "one-way delay of the shaped link (an SSH channel's window bounds a stream to window/RTT)")
	flag.Int64Var(&o.bigMiB, "big-mib", 0, "size of a big snapshot restored once (0: skip)")
	flag.StringVar(&o.etcd, "etcd-version", "3.6", "etcd of the lab")
	flag.StringVar(&o.lab, "lab", "", "use this lab (already up, 3 etcd hosts) instead of bringing one up and down (no fleet part then)")
	flag.StringVar(&o.labBase, "lab-base", "", "the --base of -lab")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the fan-out part to this file")
	flag.BoolVar(&o.shapedRaw, "shaped-raw", false, "also time the uncompressed one-pass push to the 3 hosts over the shaped link")
	flag.IntVar(&o.fleet, "fleet", 100, "workers of the big lab compared with a 2-worker one (0: skip)")
	flag.IntVar(&o.fleetRuns, "fleet-runs", 3, "restores on each fleet lab")
	snapshotsOnly := flag.Bool("snapshots-only", false, "only write the snapshots the other flags ask for into -cache, then stop (no lab)")
	flag.Parse()
	if *snapshotsOnly {
		for _, mib := range []int64{o.smallMiB, o.fanMiB, o.bigMiB} {
			if mib > 0 {
				p, err := ensureSnapshot(context.Background(), o.cache, mib)
				if err != nil {
					fmt.Fprintln(os.Stderr, "restorebench:", err)
					os.Exit(1)
				}
				fmt.Println(p)
			}
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "restorebench:", err)
		os.Exit(1)
	}
}

type opts struct {
	cache, bin, rate, etcd   string
	lab, labBase, cpuprofile string
	shapedRaw                bool
	delay                    time.Duration
	smallMiB, fanMiB, bigMiB int64
	runs                     int
	fleet, fleetRuns         int
	seqRuns                  int
}

// row is one line of the table.
type row struct {
	measure, target string
	figure          string
	// ratio is figure/target where both are numbers (0: none).
	ratio float64
	load  string
}

var table []row

func add(measure, target, figure string, ratio float64) {
	table = append(table, row{measure, target, figure, ratio, loadAvg()})
	fmt.Printf("  -> %s: %s (target %s)\n", measure, figure, target)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func printTable() {
	fmt.Printf("\n%-52s %-10s %-34s %-6s %s\n", "measure", "target", "figure", "ratio", "load avg (1/5/15 min)")
	for _, r := range table {
		ratio := "-"
		if r.ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.ratio)
		}
		fmt.Printf("%-52s %-10s %-34s %-6s %s\n", r.measure, r.target, r.figure, ratio, r.load)
	}
	fmt.Println("ratio = figure / target: at most 1 meets the target. The machine is shared: read the load average.")
}

func run(o opts) error {
	ctx := context.Background()
	t0 := time.Now()
	if err := os.MkdirAll(o.cache, 0o700); err != nil {
		return err
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	var l *lab.Lab
	if o.lab != "" {
		if l, err = lab.Open(o.lab, o.labBase); err != nil {
			return err
		}
		fmt.Printf("restorebench: lab %s (up already)\n", o.lab)
	} else {
		base, err := os.MkdirTemp("", "ezrestore-bench-base-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(base)
		name := fmt.Sprintf("rb-%d", os.Getpid())
		fmt.Printf("restorebench: lab %s (3 etcd/master hosts, 2 nodes, etcd %s; kube components are stand-ins)\n", name, o.etcd)
		if l, err = lab.Up(ctx, lab.Options{Name: name, Base: base, EtcdVersion: o.etcd}); err != nil {
			return err
		}
		defer l.Down(context.Background())
	}
	defer l.Unshape(context.Background())

	small, err := ensureSnapshot(ctx, o.cache, o.smallMiB)
	if err != nil {
		return err
	}
	if o.runs > 0 {
		fmt.Printf("restorebench: %s\n", settle(time.Minute))
		if err := benchSmall(ctx, l, bin, small, o); err != nil {
			return err
		}
	}
	if o.fanMiB > 0 {
		snap, err := ensureSnapshot(ctx, o.cache, o.fanMiB)
		if err != nil {
			return err
		}
		if err := benchFanOut(ctx, l, snap, o); err != nil {
			return err
		}
	}
	if o.bigMiB > 0 {
		snap, err := ensureSnapshot(ctx, o.cache, o.bigMiB)
		if err != nil {
			return err
		}
		r, err := restoreOnce(ctx, l, bin, snap)
		if err != nil {
			return err
		}
		add(fmt.Sprintf("%d MiB restore: total/floor", o.bigMiB), "<= 1.2", fmt.Sprintf("%.2f (total %.1fs, floor %.1fs)", r.total.Seconds()/r.floor.Seconds(), r.total.Seconds(), r.floor.Seconds()), r.total.Seconds()/r.floor.Seconds()/1.2)
		add(fmt.Sprintf("%d MiB restore: peak RSS of ezrestore", o.bigMiB), "< 100 MB", fmt.Sprintf("%.1f MB", float64(r.maxRSS)/1e6), float64(r.maxRSS)/100e6)
	}
	// The small lab goes first: the fleet labs need the machine to themselves.
	// A lab given with -lab is not ours to take down, nor the machine's
	// to fill with fleets.
	if o.lab == "" {
		l.Down(context.Background())
	}
	if o.fleet > 0 && o.lab == "" {
		if err := benchFleet(ctx, bin, small, o); err != nil {
			return err
		}
	}
	printTable()
	fmt.Printf("restorebench: wall clock of the whole bench %.0fs\n", time.Since(t0).Seconds())
	return nil
}

// ensureSnapshot makes (once) a real etcd snapshot of about mib MiB of
// Kubernetes-shaped objects.
func ensureSnapshot(ctx context.Context, cache string, mib int64) (string, error) {
	path := filepath.Join(cache, fmt.Sprintf("k8s-%dMiB.db", mib))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Printf("restorebench: writing a %d MiB snapshot of Kubernetes-shaped objects with a local etcd (cached in %s)\n", mib, cache)
	work, err := os.MkdirTemp("/dev/shm", "ezrestore-restorebench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	srv, err := etcdtest.Start(ctx, filepath.Join(work, "etcd"), etcdtest.Options{QuotaBytes: 8 << 30, SnapshotCount: 10000})
	if err != nil {
		return "", err
	}
	defer srv.Stop()
	if err := fillK8s(ctx, srv, mib<<20); err != nil {
		return "", err
	}
	tmp := path + ".part"
	if err := srv.SnapshotSave(ctx, tmp); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

type event struct {
	Time     time.Time `json:"time"`
	Step     string    `json:"step"`
	Host     string    `json:"host"`
	Status   string    `json:"status"`
	Duration float64   `json:"duration_s"`
}

type restoreRun struct {
	total, floor, stop time.Duration
	steps              map[string]time.Duration
	maxRSS             int64
	// cpu is the ezrestore process's own CPU time (user + system).
	cpu time.Duration
	// before is the time until the run record's first event (start-up,
	// connecting, planning); after, from its last one to the exit.
	before, after time.Duration
}

// restoreOnce runs `ezrestore restore` as an operator would and reads its
// run record: the floor is transfer + restore tool + etcd start to healthy.
func restoreOnce(ctx context.Context, l *lab.Lab, bin, snap string, extra ...string) (restoreRun, error) {
	var r restoreRun
	cmd := exec.CommandContext(ctx, bin, append([]string{"--base", l.Opts.Base, "restore", l.Opts.Name, "--snapshot", snap, "--yes"}, extra...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	r.total = time.Since(t0)
	if err != nil {
		return r, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss * 1024
		r.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	}
	dirs, _ := filepath.Glob(filepath.Join(l.Dir.Path, "restores", "*"))
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return r, fmt.Errorf("no run record under %s", l.Dir.Path)
	}
	f, err := os.Open(filepath.Join(dirs[len(dirs)-1], "events.jsonl"))
	if err != nil {
		return r, err
	}
	defer f.Close()
	r.steps = map[string]time.Duration{}
	var first, last time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if first.IsZero() {
			first = e.Time
		}
		last = e.Time
		if e.Host == "" && strings.HasPrefix(e.Status, "end:") {
			r.steps[e.Step] = time.Duration(e.Duration * float64(time.Second))
		}
	}
	// Before the record's first event: start-up, connecting, planning,
	// writing the record, the hosts' run locks; after its last: releasing
	// the locks and exiting.
	r.before, r.after = first.Sub(t0), t0.Add(r.total).Sub(last)
	r.floor = r.steps["push snapshot"] + r.steps["restore snapshot"] + r.steps["start etcd"] + r.steps["wait for etcd health"]
	r.stop = r.steps["stop etcd"]
	if r.floor == 0 {
		return r, fmt.Errorf("run record %s lacks the floor's steps", dirs[len(dirs)-1])
	}
	return r, nil
}

func benchSmall(ctx context.Context, l *lab.Lab, bin, snap string, o opts) error {
	fi, err := os.Stat(snap)
	if err != nil {
		return err
	}
	fmt.Printf("\n== %d restores of a %s snapshot on lab %s (etcd %s), each the whole command\n", o.runs, bytesize.Human(fi.Size()), l.Opts.Name, l.EtcdRelease)
	runs, err := smallRuns(ctx, l, bin, snap, o.runs)
	if err != nil {
		return err
	}
	med := func(runs []restoreRun, f func(restoreRun) time.Duration) time.Duration {
		var ds []time.Duration
		for _, r := range runs {
			ds = append(ds, f(r))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	stop := med(runs, func(r restoreRun) time.Duration { return r.stop })
	over := med(runs, func(r restoreRun) time.Duration { return r.total - r.floor })
	total := med(runs, func(r restoreRun) time.Duration { return r.total })
	floor := med(runs, func(r restoreRun) time.Duration { return r.floor })
	mib := o.smallMiB
	add(fmt.Sprintf("%d MiB, 5 hosts: stop etcd, push beside it (median of %d)", mib, o.runs), "<= 0.3 s", fmt.Sprintf("%.3f s", stop.Seconds()), stop.Seconds()/0.3)
	add(fmt.Sprintf("%d MiB, 5 hosts: wall clock - floor (median)", mib), "<= 1.0 s", fmt.Sprintf("%.3f s (total %.2f, floor %.2f)", over.Seconds(), total.Seconds(), floor.Seconds()), over.Seconds()/1.0)
	add(fmt.Sprintf("%d MiB, 5 hosts: total/floor (median)", mib), "-", fmt.Sprintf("%.2f", total.Seconds()/floor.Seconds()), 0)
	if o.seqRuns <= 0 {
		return nil
	}
	// The built-in playbook pushes beside the stops; on the lab's two
	// shared cores the push's CPU slows the stop. The same restore with the
	// push after the stops shows the stop on its own, and what the overlap
	// buys in total.
	pb, err := sequentialPlaybook()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "restorebench-seq-*.yml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(pb); err != nil {
		return err
	}
	f.Close()
	fmt.Printf("\n== %d restores with the push after the stops (--playbook %s)\n", o.seqRuns, f.Name())
	seq, err := smallRuns(ctx, l, bin, snap, o.seqRuns, "--playbook", f.Name())
	if err != nil {
		return err
	}
	seqStop := med(seq, func(r restoreRun) time.Duration { return r.stop })
	seqTotal := med(seq, func(r restoreRun) time.Duration { return r.total })
	seqOver := med(seq, func(r restoreRun) time.Duration { return r.total - r.floor })
	add(fmt.Sprintf("%d MiB, 5 hosts: stop etcd alone, push after (median of %d)", mib, o.seqRuns), "<= 0.3 s", fmt.Sprintf("%.3f s", seqStop.Seconds()), seqStop.Seconds()/0.3)
	add(fmt.Sprintf("%d MiB, 5 hosts: total, push beside / after the stops", mib), "-", fmt.Sprintf("%.2f (%.2fs vs %.2fs; over the floor %.2fs after)", total.Seconds()/seqTotal.Seconds(), total.Seconds(), seqTotal.Seconds(), seqOver.Seconds()), 0)
	return nil
}

// smallRuns restores snap n times and prints each run's parts.
func smallRuns(ctx context.Context, l *lab.Lab, bin, snap string, n int, extra ...string) ([]restoreRun, error) {
	var runs []restoreRun
	for i := 0; i < n; i++ {
		r, err := restoreOnce(ctx, l, bin, snap, extra...)
		if err != nil {
			return nil, err
		}
		fmt.Printf("  run %d: total %.3fs floor %.3fs (push %.3f, tool %.3f, start %.3f, health %.3f) total/floor %.2f; stop etcd %.3fs; peak RSS %.1f MB\n",
			i+1, r.total.Seconds(), r.floor.Seconds(), r.steps["push snapshot"].Seconds(), r.steps["restore snapshot"].Seconds(),
			r.steps["start etcd"].Seconds(), r.steps["wait for etcd health"].Seconds(), r.total.Seconds()/r.floor.Seconds(), r.stop.Seconds(), float64(r.maxRSS)/1e6)
		fmt.Printf("         over the floor: start-up to first event %.3f (connect, plan, record, locks), stop kube masters %.3f, stop etcd %.3f, swap %.3f, start kube masters %.3f (background), clean-up %.3f, last event to exit %.3f; load %s\n",
			r.before.Seconds(), r.steps["stop kube masters"].Seconds(), r.stop.Seconds(), r.steps["swap data dirs"].Seconds(),
			r.steps["start kube masters"].Seconds(), r.steps["remove staged copies"].Seconds(), r.after.Seconds(), loadAvg())
		runs = append(runs, r)
	}
	return runs, nil
}

// sequentialPlaybook is the built-in restore playbook with the push moved
// after "stop etcd" and run in the foreground, as it ran before the overlap.
func sequentialPlaybook() ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(playbooks.Restore, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	var steps *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "steps" {
			steps = root.Content[i+1]
		}
	}
	if steps == nil {
		return nil, fmt.Errorf("the built-in playbook has no steps")
	}
	name := func(n *yaml.Node) string {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "name" {
				return n.Content[i+1].Value
			}
		}
		return ""
	}
	var push *yaml.Node
	var rest []*yaml.Node
	for _, st := range steps.Content {
		if name(st) == "push snapshot" {
			push = st
			continue
		}
		rest = append(rest, st)
	}
	if push == nil {
		return nil, fmt.Errorf("the built-in playbook has no step \"push snapshot\"")
	}
	var kept []*yaml.Node
	for i := 0; i+1 < len(push.Content); i += 2 {
		if k := push.Content[i].Value; k != "background" && k != "finish_before" {
			kept = append(kept, push.Content[i], push.Content[i+1])
		}
	}
	push.Content = kept
	var out []*yaml.Node
	for _, st := range rest {
		out = append(out, st)
		if name(st) == "stop etcd" {
			out = append(out, push)
		}
	}
	steps.Content = out
	return yaml.Marshal(&doc)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// zstdRatio is how much zstd's fastest level would compress the file, for comparison.
func zstdRatio(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cw := &countWriter{}
	zw, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(zw, f)
	if err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return float64(n) / float64(cw.n), nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
