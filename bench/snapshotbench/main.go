// Command bench measures the offline snapshot commands on files written by a
// real etcd:
//
//   - `ezrestore snapshot find` across 10 snapshots of about 100 MB each
//     (target: under 5 s);
//   - `ezrestore snapshot inspect` of a snapshot of about 1 GiB (target: peak
//     memory under 200 MB), reporting the child's peak RSS (getrusage) and,
//     from an in-process run, the peak Go heap.
//
// Generating the files takes minutes, so they are cached in
// /var/cache/ezrestore/bench (override with -cache) and made only once. etcd
// runs on 127.0.0.1 with its data dir in /dev/shm while writing, so the
// benchmark does not wait on fsync; the snapshots are then saved to the cache.
//
//	go run ./bench/snapshotbench -bin bin/ezrestore
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/etcdtest"
	"github.com/ezrestore/ezrestore/snapshot"
)

const (
	findFiles = 10
	findSize  = 100 << 20
	bigSize   = 1 << 30
	marker    = "/registry/pods/bench/net-test-marker"
)

func main() {
	cache := flag.String("cache", "/var/cache/ezrestore/bench", "where generated snapshots are kept")
	bin := flag.String("bin", "bin/ezrestore", "the ezrestore binary to measure")
	work := flag.String("work", "/dev/shm", "where etcd keeps its data while writing")
	child := flag.String("heap-child", "", "internal: inspect this file in-process and print the peak heap")
	flag.Parse()
	if *child != "" {
		heapChild(*child)
		return
	}
	if err := run(*cache, *bin, *work); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(cache, bin, work string) error {
	if err := os.MkdirAll(filepath.Join(cache, "find"), 0o700); err != nil {
		return err
	}
	ctx := context.Background()
	if err := ensureFindSet(ctx, filepath.Join(cache, "find"), work); err != nil {
		return fmt.Errorf("generate find set: %w", err)
	}
	big := filepath.Join(cache, "big.db")
	if err := ensureBig(ctx, big, work); err != nil {
		return fmt.Errorf("generate 1 GiB snapshot: %w", err)
	}

	// find, as an operator runs it: a cluster whose backup dir holds the 10 files.
	base, err := os.MkdirTemp("", "ezrestore-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	clusterDir := filepath.Join(base, "clusters", "bench")
	if err := os.MkdirAll(clusterDir, 0o700); err != nil {
		return err
	}
	if err := os.Symlink(filepath.Join(cache, "find"), filepath.Join(clusterDir, "backup")); err != nil {
		return err
	}
	var total int64
	files, _ := filepath.Glob(filepath.Join(cache, "find", "*.db"))
	for _, f := range files {
		fi, _ := os.Stat(f)
		total += fi.Size()
	}
	// The first run starts with the files out of the page cache; the warm
	// figure is the best of three after it.
	var best time.Duration
	for i := 0; i < 4; i++ {
		if i == 0 {
			evict(files...)
		}
		start := time.Now()
		cmd := exec.Command(bin, "--base", base, "snapshot", "find", "net-test-marker-3", "--cluster", "bench")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", cmd, err, out)
		}
		d := time.Since(start)
		if i == 1 || (i > 1 && d < best) {
			best = d
		}
		if i == 0 {
			fmt.Printf("find: cold (files evicted from the page cache): %.2f s\n", d.Seconds())
		}
	}
	fmt.Printf("find: %d snapshots, %.0f MB in all: warm %.2f s (target < 5 s)\n", len(files), float64(total)/1e6, best.Seconds())

	// inspect of the 1 GiB file, by the real binary: peak RSS of the process.
	fi, err := os.Stat(big)
	if err != nil {
		return err
	}
	evict(big)
	start := time.Now()
	cmd := exec.Command(bin, "snapshot", "inspect", big, "-o", "json")
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %v", cmd, err)
	}
	var info snapshot.Info
	if err := json.Unmarshal(out, &info); err != nil {
		return err
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	fmt.Printf("inspect: %.2f GiB snapshot, %d keys, revision %d, hash_verified %v: %.1f s from cold, peak RSS %.0f MB (target < 200 MB)\n",
		float64(fi.Size())/(1<<30), info.Keys, info.Revision, info.HashVerified != nil && *info.HashVerified,
		time.Since(start).Seconds(), float64(rss)/1e6)

	// The same in-process, sampling the Go heap.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd = exec.Command(self, "-heap-child", big)
	cmd.Stderr = os.Stderr
	out, err = cmd.Output()
	if err != nil {
		return fmt.Errorf("heap child: %v", err)
	}
	var h struct{ PeakHeap, PeakRSS int64 }
	if err := json.Unmarshal(out, &h); err != nil {
		return err
	}
	fmt.Printf("inspect: peak Go heap %.0f MB, peak RSS %.0f MB (in-process)\n", float64(h.PeakHeap)/1e6,
		float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss*1024)/1e6)
	return nil
}

// evict drops the files' pages from the page cache (POSIX_FADV_DONTNEED), so
// a run reads them from disk; it touches no other file's cache.
func evict(paths ...string) {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		const fadvDontNeed = 4
		_, _, _ = syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0)
		f.Close()
	}
}

// heapChild inspects path while sampling the live heap every few milliseconds.
func heapChild(path string) {
	var peak atomic.Int64
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			metrics.Read(sample)
			if v := int64(sample[0].Value.Uint64()); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	if _, err := snapshot.Inspect(path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	close(stop)
	wg.Wait()
	runtime.KeepAlive(sample)
	json.NewEncoder(os.Stdout).Encode(map[string]int64{"PeakHeap": peak.Load()})
}

// writer fills an etcd with Kubernetes-like keys and then rewrites some.
type writer struct {
	*etcdtest.Filler
	rng *rand.Rand
}

func value(rng *rand.Rand) []byte { return etcdtest.Value(rng) }

func (w *writer) fill(ctx context.Context, size int64) error { return w.Fill(ctx, size) }

func startEtcd(ctx context.Context, work string) (*etcdtest.Server, func(), error) {
	dir, err := os.MkdirTemp(work, "ezrestore-bench-etcd-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := etcdtest.Start(ctx, dir, etcdtest.Options{QuotaBytes: 8 << 30, SnapshotCount: 5000})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return srv, func() { srv.Stop(); os.RemoveAll(dir) }, nil
}

// ensureFindSet makes 10 snapshots of about 100 MB: one etcd, and between two
// snapshots some keys rewritten, one marker key added and the previous deleted,
// and the history compacted so the database stays near 100 MB.
func ensureFindSet(ctx context.Context, dir, work string) error {
	if m, _ := filepath.Glob(filepath.Join(dir, "snapshot_*.db")); len(m) == findFiles {
		return nil
	}
	fmt.Println("generating 10 snapshots of ~100 MB with etcd (once; cached in " + dir + ")")
	srv, stop, err := startEtcd(ctx, work)
	if err != nil {
		return err
	}
	defer stop()
	w := &writer{Filler: &etcdtest.Filler{Server: srv}, rng: rand.New(rand.NewSource(1))}
	if err := w.fill(ctx, findSize); err != nil {
		return err
	}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.Local)
	for i := 0; i < findFiles; i++ {
		for j := 0; j < 300; j++ {
			n := w.rng.Intn(w.Written())
			if _, err := srv.Put(ctx, fmt.Sprintf("/registry/pods/ns-%03d/pod-%07d", n%200, n), value(w.rng)); err != nil {
				return err
			}
		}
		if i > 0 {
			if _, err := srv.Delete(ctx, fmt.Sprintf("%s-%d", marker, i-1)); err != nil {
				return err
			}
		}
		rev, err := srv.Put(ctx, fmt.Sprintf("%s-%d", marker, i), []byte("pod"))
		if err != nil {
			return err
		}
		if err := srv.Compact(ctx, rev); err != nil {
			return err
		}
		p := filepath.Join(dir, snapshot.BackupName(t0.Add(time.Duration(i)*time.Hour), 1))
		if err := srv.SnapshotSave(ctx, p+".tmp"); err != nil {
			return err
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return err
		}
	}
	return nil
}

func ensureBig(ctx context.Context, path, work string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	fmt.Println("generating a ~1 GiB snapshot with etcd (once; cached as " + path + ")")
	srv, stop, err := startEtcd(ctx, work)
	if err != nil {
		return err
	}
	defer stop()
	w := &writer{Filler: &etcdtest.Filler{Server: srv}, rng: rand.New(rand.NewSource(2))}
	if err := w.fill(ctx, bigSize); err != nil {
		return err
	}
	if err := srv.SnapshotSave(ctx, path+".tmp"); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
