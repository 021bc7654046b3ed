// Command restorebench measures `ezrestore restore` on the lab: per-step
// times for a 16 MiB and a 512 MiB snapshot, the orchestration overhead
// (total minus transfer, restore tool and etcd start-to-healthy), how soon
// health is seen after etcd says it is ready, and the snapshot fan-out to all
// etcd hosts beside three parallel OpenSSH scp of the same file.
//
// Run it with `make bench` (root, on a machine that can run the lab).
//
// It drives the lab and the restore library as a user would, and is imported
// by nothing.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/cluster"
	"github.com/ezrestore/ezrestore/internal/etcdtest"
	"github.com/ezrestore/ezrestore/lab"
	"github.com/ezrestore/ezrestore/orchestrator"
	"github.com/ezrestore/ezrestore/restore"
)

func main() {
	cache := flag.String("cache", "/var/cache/ezrestore/bench", "where generated snapshots are kept between runs")
	sizes := flag.String("sizes", "16,512", "snapshot sizes in MiB")
	runs := flag.Int("runs", 3, "fan-out rounds per tool")
	flag.Parse()
	if err := run(*cache, *sizes, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "restorebench:", err)
		os.Exit(1)
	}
}

func run(cache, sizes string, runs int) error {
	ctx := context.Background()
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return err
	}
	base, err := os.MkdirTemp("", "ezrestore-bench-base-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	fmt.Println("restorebench: bringing up lab 'bench' (3 etcd/master hosts, 2 nodes; kube components are stand-ins)")
	l, err := lab.Up(ctx, lab.Options{Name: "bench", Base: base})
	if err != nil {
		return err
	}
	defer l.Down(context.Background())

	for _, s := range strings.Split(sizes, ",") {
		var mib int64
		fmt.Sscan(s, &mib)
		snap, err := ensureSnapshot(ctx, cache, mib)
		if err != nil {
			return err
		}
		if err := benchRestore(ctx, l, snap, mib); err != nil {
			return err
		}
		if err := benchFanOut(ctx, l, snap, runs); err != nil {
			return err
		}
	}
	return nil
}

// ensureSnapshot makes (once) a real etcd snapshot of about mib MiB.
func ensureSnapshot(ctx context.Context, cache string, mib int64) (string, error) {
	path := filepath.Join(cache, fmt.Sprintf("restore-%dMiB.db", mib))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Printf("restorebench: writing a %d MiB snapshot with a local etcd (cached in %s)\n", mib, cache)
	// etcd writes to memory so generating does not wait on fsync.
	work, err := os.MkdirTemp("/dev/shm", "ezrestore-restorebench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	srv, err := etcdtest.Start(ctx, filepath.Join(work, "etcd"), etcdtest.Options{QuotaBytes: 4 << 30, SnapshotCount: 10000})
	if err != nil {
		return "", err
	}
	defer srv.Stop()
	if err := (&etcdtest.Filler{Server: srv}).Fill(ctx, mib<<20); err != nil {
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

func benchRestore(ctx context.Context, l *lab.Lab, snap string, mib int64) error {
	fi, err := os.Stat(snap)
	if err != nil {
		return err
	}
	req := restore.Request{Target: cluster.Selector{Base: l.Opts.Base, Cluster: l.Opts.Name}, Snapshot: snap, Yes: true, Out: io.Discard, Forks: 20}
	t0 := time.Now()
	s, err := restore.Prepare(ctx, req)
	if err != nil {
		return err
	}
	prepared := time.Since(t0)
	t1 := time.Now()
	recap, err := s.Execute(ctx)
	s.Close()
	if err != nil {
		return err
	}
	total := time.Since(t0)
	run := time.Since(t1)
	steps := map[string]time.Duration{}
	for _, st := range recap.Steps {
		steps[st.Name] = st.Duration
	}
	push, tool := steps["push snapshot"], steps["restore snapshot"]
	startToHealthy := steps["start etcd"] + steps["wait for etcd health"]
	overhead := total - push - tool - startToHealthy
	fmt.Printf("\n== restore of a %s snapshot on lab %s (etcd %s)\n", orchestrator.HumanBytes(fi.Size()), l.Opts.Name, l.EtcdRelease)
	fmt.Printf("  %-30s %8.3fs\n", "connect + preflight + plan", prepared.Seconds())
	for _, st := range recap.Steps {
		fmt.Printf("  %-30s %8.3fs\n", st.Name, st.Duration.Seconds())
	}
	fmt.Printf("  %-30s %8.3fs (execute %.3fs)\n", "total", total.Seconds(), run.Seconds())
	fmt.Printf("  orchestration overhead: %.3fs = total - transfer %.3fs - restore tool %.3fs - etcd start-to-healthy %.3fs\n",
		overhead.Seconds(), push.Seconds(), tool.Seconds(), startToHealthy.Seconds())
	fmt.Printf("    of which stopping services (systemd and etcd's own shutdown): %.3fs\n",
		(steps["stop kube masters"] + steps["stop kubelet and kube-proxy"] + steps["stop etcd"]).Seconds())

	// When did etcd itself become ready, and when did the health step see it?
	seen, err := healthSeen(s.Env.Record.Dir)
	if err != nil {
		return err
	}
	ready, err := etcdReady(ctx, l, t1)
	if err != nil {
		return err
	}
	fmt.Printf("  health seen %.3fs after the last member logged it was ready to serve (%s)\n",
		seen.Sub(ready).Seconds(), ready.Format(time.RFC3339Nano))
	return nil
}

// healthSeen is when the run's health step ended successfully.
func healthSeen(recordDir string) (time.Time, error) {
	f, err := os.Open(filepath.Join(recordDir, "events.jsonl"))
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Step == "wait for etcd health" && e.Status == "end:ok" {
			return e.Time, nil
		}
	}
	return time.Time{}, fmt.Errorf("no successful health step in %s", recordDir)
}

// etcdReady is the latest time any member logged that it serves clients,
// since since. The hosts share this machine's clock.
func etcdReady(ctx context.Context, l *lab.Lab, since time.Time) (time.Time, error) {
	var latest time.Time
	for _, h := range l.EtcdHosts() {
		out, err := l.Exec(ctx, h.Address, fmt.Sprintf("journalctl -u etcd -o short-iso-precise --no-pager --since @%d | grep -i 'ready to serve client requests' | tail -n 1", since.Unix()))
		if err != nil {
			return latest, err
		}
		fields := strings.Fields(string(out))
		if len(fields) == 0 {
			return latest, fmt.Errorf("%s: etcd logged no 'ready to serve client requests' since %v", h.Address, since)
		}
		t, err := time.Parse("2006-01-02T15:04:05.999999-0700", fields[0])
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05.999999Z07:00", fields[0])
		}
		if err != nil {
			return latest, fmt.Errorf("%s: journal time %q: %w", h.Address, fields[0], err)
		}
		if t.After(latest) {
			latest = t
		}
	}
	return latest, nil
}

// benchFanOut sends the snapshot to every etcd host at once with ezrestore's
// SFTP uploads and with three parallel OpenSSH scp processes, same file, same
// hosts, alternating, and prints the throughput ratio.
func benchFanOut(ctx context.Context, l *lab.Lab, snap string, runs int) error {
	fi, err := os.Stat(snap)
	if err != nil {
		return err
	}
	s, err := restore.Prepare(ctx, restore.Request{Target: cluster.Selector{Base: l.Opts.Base, Cluster: l.Opts.Name}, Snapshot: snap, Yes: true, Out: io.Discard})
	if err != nil {
		return err
	}
	defer s.Close()
	hosts := l.EtcdHosts()
	remote := "/root/fanout.db"
	ours := func() (time.Duration, error) {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, len(hosts))
		for i, h := range hosts {
			conn, err := s.Env.Conn(h.Address)
			if err != nil {
				return 0, err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = conn.Upload(ctx, snap, remote, 0o600, nil)
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != nil {
				return 0, e
			}
		}
		return time.Since(t0), nil
	}
	scp := func() (time.Duration, error) {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, len(hosts))
		for i, h := range hosts {
			args := l.SSHArgs(h.Address)
			dest := args[len(args)-1] + ":" + remote
			cmd := exec.CommandContext(ctx, "scp", append(append([]string{"-q"}, args[:len(args)-1]...), snap, dest)...)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("scp to %s: %v: %s", h.Address, err, out)
				}
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != nil {
				return 0, e
			}
		}
		return time.Since(t0), nil
	}
	var o, c []time.Duration
	for r := 0; r < runs; r++ {
		d, err := scp()
		if err != nil {
			return err
		}
		c = append(c, d)
		if d, err = ours(); err != nil {
			return err
		}
		o = append(o, d)
	}
	mo, mc := median(o), median(c)
	bytes := float64(fi.Size()) * float64(len(hosts))
	fmt.Printf("  fan-out of %s to %d hosts, median of %d: ezrestore SFTP %.3fs (%.0f MiB/s), 3x OpenSSH scp %.3fs (%.0f MiB/s), throughput ratio %.2f\n",
		orchestrator.HumanBytes(fi.Size()), len(hosts), runs, mo.Seconds(), bytes/mo.Seconds()/(1<<20), mc.Seconds(), bytes/mc.Seconds()/(1<<20), mc.Seconds()/mo.Seconds())
	for _, h := range hosts {
		l.Exec(ctx, h.Address, "rm -f "+remote)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
