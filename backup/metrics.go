package backup

// Metrics for monitoring: each backup, good or failed, rewrites a file in
// the Prometheus text format for node exporter's textfile collector, so a
// backup that fails at 3 a.m. shows on a dashboard and in an alert, not
// only in the journal.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/internal/atomicfile"
)

// TextfileDirs are where node exporter's textfile collector commonly reads
// from, in the order a schedule looks for one: Debian's and Ubuntu's
// prometheus-node-exporter package, then the layouts of the common
// Ansible roles.
var TextfileDirs = []string{
	"/var/lib/prometheus/node-exporter",
	"/var/lib/node_exporter/textfile_collector",
	"/var/lib/node_exporter",
}

// MetricsFileName is a cluster's file in a textfile collector's dir.
func MetricsFileName(cluster string) string { return "ezrestore_backup_" + cluster + ".prom" }

// DefaultMetricsFile is where a scheduled backup writes its metrics: the
// first of TextfileDirs that exists, else the cluster dir (where a
// collector can be pointed, or the file read by hand).
func DefaultMetricsFile(clusterDir, cluster string) string {
	for _, d := range TextfileDirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return filepath.Join(d, MetricsFileName(cluster))
		}
	}
	return filepath.Join(clusterDir, MetricsFileName(cluster))
}

// Metrics is what the file says about a cluster's backups.
type Metrics struct {
	Cluster string
	// LastAttempt is when the last backup started; LastSuccess when the
	// last one that succeeded did (zero: none yet).
	LastAttempt, LastSuccess time.Time
	// LastOK is whether the last attempt succeeded.
	LastOK bool
	// Duration is how long the last attempt took.
	Duration time.Duration
	// Of the last successful backup: its size, revision and keys, whether
	// a throwaway etcd restored it (--verify-restore), and whether it was
	// copied offsite.
	Size, Revision, Keys int64
	VerifiedRestore      bool
	OffsiteCopied        bool
	// ConsecutiveFailures counts the failed attempts since the last success.
	ConsecutiveFailures int64
}

const metricPrefix = "ezrestore_backup_"

// metricLines are the metrics in file order, with their help and value.
func (m *Metrics) metricLines() []struct{ name, help, value string } {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
	}
	return []struct{ name, help, value string }{
		{"last_attempt_timestamp_seconds", "When the last backup attempt started (Unix time).", ts(m.LastAttempt)},
		{"last_success_timestamp_seconds", "When the last successful backup started (Unix time; 0: none yet).", ts(m.LastSuccess)},
		{"last_attempt_success", "1 when the last backup attempt succeeded, else 0.", b(m.LastOK)},
		{"duration_seconds", "How long the last backup attempt took.", strconv.FormatFloat(m.Duration.Seconds(), 'f', 3, 64)},
		{"consecutive_failures", "Failed backup attempts since the last success.", strconv.FormatInt(m.ConsecutiveFailures, 10)},
		{"snapshot_size_bytes", "Size of the last successful backup's snapshot.", strconv.FormatInt(m.Size, 10)},
		{"snapshot_revision", "etcd revision of the last successful backup.", strconv.FormatInt(m.Revision, 10)},
		{"snapshot_keys", "Live keys in the last successful backup.", strconv.FormatInt(m.Keys, 10)},
		{"verified_restore", "1 when the last successful backup was restored into a throwaway etcd (--verify-restore).", b(m.VerifiedRestore)},
		{"offsite_copied", "1 when the last successful backup was copied offsite and read back (--to).", b(m.OffsiteCopied)},
	}
}

// Text is the file's content in the Prometheus text format.
func (m *Metrics) Text() string {
	var b strings.Builder
	// %q escapes a backslash, a quote and a newline as the format wants.
	label := fmt.Sprintf("{cluster=%q}", m.Cluster)
	for _, l := range m.metricLines() {
		fmt.Fprintf(&b, "# HELP %s%s %s\n# TYPE %s%s gauge\n%s%s%s %s\n", metricPrefix, l.name, l.help, metricPrefix, l.name, metricPrefix, l.name, label, l.value)
	}
	return b.String()
}

// ReadMetrics reads a metrics file this package wrote; a missing file is
// no error and gives nil.
func ReadMetrics(path string) (*Metrics, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := &Metrics{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, "{")
		labels, value, ok2 := strings.Cut(rest, "} ")
		if !ok || !ok2 || !strings.HasPrefix(name, metricPrefix) {
			return nil, fmt.Errorf("%s:%d: not a line ezrestore writes: %q", path, n, line)
		}
		if c, err := strconv.Unquote(strings.TrimPrefix(labels, "cluster=")); err == nil {
			m.Cluster = c
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", path, n, name, err)
		}
		t := time.Time{}
		if v > 0 {
			t = time.UnixMilli(int64(v * 1000))
		}
		switch strings.TrimPrefix(name, metricPrefix) {
		case "last_attempt_timestamp_seconds":
			m.LastAttempt = t
		case "last_success_timestamp_seconds":
			m.LastSuccess = t
		case "last_attempt_success":
			m.LastOK = v == 1
		case "duration_seconds":
			m.Duration = time.Duration(v * float64(time.Second))
		case "consecutive_failures":
			m.ConsecutiveFailures = int64(v)
		case "snapshot_size_bytes":
			m.Size = int64(v)
		case "snapshot_revision":
			m.Revision = int64(v)
		case "snapshot_keys":
			m.Keys = int64(v)
		case "verified_restore":
			m.VerifiedRestore = v == 1
		case "offsite_copied":
			m.OffsiteCopied = v == 1
		}
	}
	return m, sc.Err()
}

// RecordMetrics rewrites the metrics file at path after a backup attempt
// that started at started: err nil is a success (res is the backup), else
// a failure, which carries the last success's figures from the file as it
// was and counts one more consecutive failure. The file is replaced
// atomically (a collector never reads half of it), mode 0644: node
// exporter runs as another user, and the figures hold no secret.
func RecordMetrics(path, cluster string, started time.Time, took time.Duration, res *Result, err error) (*Metrics, error) {
	prev, rerr := ReadMetrics(path)
	if rerr != nil {
		// A file we cannot read is replaced, but the failure count restarts:
		// say so rather than hide it.
		rerr = fmt.Errorf("previous metrics unreadable, counts restart: %w", rerr)
	}
	m := Metrics{}
	if prev != nil {
		m = *prev
	}
	m.Cluster, m.LastAttempt, m.Duration = cluster, started, took
	if err == nil && res != nil {
		m.LastOK, m.LastSuccess, m.ConsecutiveFailures = true, started, 0
		m.Size, m.Revision, m.Keys = res.Sidecar.Size, res.Sidecar.Revision, int64(res.Sidecar.Keys)
		m.VerifiedRestore, m.OffsiteCopied = res.Verified != nil, res.Offsite != nil
	} else {
		m.LastOK = false
		m.ConsecutiveFailures++
	}
	if werr := atomicfile.Write(path, []byte(m.Text()), 0o644); werr != nil {
		return &m, fmt.Errorf("writing the metrics file: %w", werr)
	}
	return &m, rerr
}
