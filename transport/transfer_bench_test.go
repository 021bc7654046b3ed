package transport

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/internal/testkit/sshtest"
)

// BenchmarkUploadVsScp sends the same file to the same private sshd with
// Upload then RemoteSha256 (SFTP, then the host rereads the file: the push
// before Push), with Push (one pass: tee into sha256sum) and with scp(1), and
// reports the three rates and the ratios to scp (above 1: faster than scp). Size in MiB: EZRESTORE_BENCH_MB (default 64).
//
//	EZRESTORE_E2E=1 go test -run '^$' -bench UploadVsScp -benchtime 3x ./orchestrator/transport/
func BenchmarkUploadVsScp(b *testing.B) {
	sshtest.Require(b)
	if _, err := exec.LookPath("scp"); err != nil {
		b.Fatal("scp is not installed (openssh-client)")
	}
	mb := 64
	if v, err := strconv.Atoi(os.Getenv("EZRESTORE_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	b.Setenv("HOME", b.TempDir())
	srv := sshtest.Start(b)
	kh := filepath.Join(b.TempDir(), "known_hosts")
	srv.WriteKnownHosts(b, kh)
	opts := Options{KnownHostsFiles: []string{kh}, IdentityFiles: []string{srv.ClientKeyFile}, NoAgent: true}
	c, err := Dial(context.Background(), srv.Host("root"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	local, sum := randomFile(b, mb<<20)
	dir := b.TempDir()
	size := int64(mb) << 20
	b.SetBytes(size)

	var upload, push, scp time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := c.Upload(context.Background(), local, filepath.Join(dir, "up.db"), 0o600, nil); err != nil {
			b.Fatal(err)
		}
		if got, err := RemoteSha256(context.Background(), c, filepath.Join(dir, "up.db")); err != nil || got != sum {
			b.Fatalf("upload: sha256 %s, %v", got, err)
		}
		upload += time.Since(start)

		start = time.Now()
		if _, err := Push(context.Background(), c, local, filepath.Join(dir, "push.db"), 0o600, sum, nil); err != nil {
			b.Fatal(err)
		}
		push += time.Since(start)

		b.StopTimer()
		cmd := exec.Command("scp", "-q", "-B", "-i", srv.ClientKeyFile, "-P", strconv.Itoa(srv.Port),
			"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
			local, "root@127.0.0.1:"+filepath.Join(dir, "scp.db"))
		start = time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("scp: %v: %s", err, out)
		}
		scp += time.Since(start)
		b.StartTimer()
	}
	rate := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / (1 << 20) }
	b.ReportMetric(rate(upload), "upload+sum-MiB/s")
	b.ReportMetric(rate(push), "push-MiB/s")
	b.ReportMetric(rate(scp), "scp-MiB/s")
	b.ReportMetric(rate(upload)/rate(scp), "upload/scp")
	b.ReportMetric(rate(push)/rate(scp), "push/scp")
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(os.Stderr, "upload+sha256sum %.0f MiB/s, push %.0f MiB/s, scp %.0f MiB/s; upload/scp %.2f, push/scp %.2f (%d MiB x %d; load %.14s)\n",
		rate(upload), rate(push), rate(scp), rate(upload)/rate(scp), rate(push)/rate(scp), mb, b.N, load)
}
