package backup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/snapshot"
)

func TestRecordMetricsCarriesTheLastSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), MetricsFileName("k8s-01"))
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	ok := &Result{Sidecar: snapshot.Sidecar{Size: 4096, Revision: 42, Keys: 7}, Offsite: &Uploaded{}}
	if _, err := RecordMetrics(path, "k8s-01", t0, 2*time.Second, ok, nil); err != nil {
		t.Fatal(err)
	}
	fail := errors.New("no reachable healthy etcd member")
	for i := 1; i <= 2; i++ {
		if _, err := RecordMetrics(path, "k8s-01", t0.Add(time.Duration(i)*time.Hour), time.Second, nil, fail); err != nil {
			t.Fatal(err)
		}
	}
	m, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.ConsecutiveFailures != 2 || m.LastOK || !m.LastAttempt.Equal(t0.Add(2*time.Hour)) || !m.LastSuccess.Equal(t0) {
		t.Errorf("after a success and two failures: %+v", m)
	}
	if m.Size != 4096 || m.Revision != 42 || m.Keys != 7 || !m.OffsiteCopied || m.VerifiedRestore {
		t.Errorf("the last success's figures were not carried: %+v", m)
	}
	text, _ := os.ReadFile(path)
	for _, want := range []string{
		`ezrestore_backup_consecutive_failures{cluster="k8s-01"} 2`,
		`ezrestore_backup_last_success_timestamp_seconds{cluster="k8s-01"} 1796526000.000`,
		"# TYPE ezrestore_backup_last_attempt_timestamp_seconds gauge",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("file lacks %q:\n%s", want, text)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v: node exporter must be able to read it", fi.Mode().Perm())
	}
	// A success resets the count.
	if m, _ = RecordMetrics(path, "k8s-01", t0.Add(3*time.Hour), time.Second, ok, nil); m.ConsecutiveFailures != 0 || !m.LastSuccess.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("after a success: %+v", m)
	}
	// A file that is not ours is replaced, and the caller is told the counts restart.
	os.WriteFile(path, []byte("garbage\n"), 0o644)
	if m, err = RecordMetrics(path, "k8s-01", t0, time.Second, nil, fail); err == nil || !strings.Contains(err.Error(), "counts restart") || m.ConsecutiveFailures != 1 {
		t.Errorf("unreadable previous file: %v %+v", err, m)
	}
}

func TestDefaultMetricsFileFallsBackToTheClusterDir(t *testing.T) {
	dir := t.TempDir()
	saved := TextfileDirs
	defer func() { TextfileDirs = saved }()
	collector := filepath.Join(dir, "collector")
	TextfileDirs = []string{filepath.Join(dir, "missing"), collector}
	if got := DefaultMetricsFile("/c/k8s-01", "k8s-01"); got != "/c/k8s-01/ezrestore_backup_k8s-01.prom" {
		t.Errorf("no collector dir: %s", got)
	}
	os.Mkdir(collector, 0o755)
	if got := DefaultMetricsFile("/c/k8s-01", "k8s-01"); got != filepath.Join(collector, "ezrestore_backup_k8s-01.prom") {
		t.Errorf("with a collector dir: %s", got)
	}
}
