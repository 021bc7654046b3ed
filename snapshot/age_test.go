package snapshot

import (
	"strings"
	"testing"
	"time"
)

func TestCheckAgeAndNewestVerified(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	entries := []Entry{
		{Name: "snapshot.db", Time: now.Add(-2 * time.Hour), Integrity: IntegrityOK, CopyOf: "snapshot_202612061000.db"},
		{Name: "snapshot_202612061130.db", Time: now.Add(-30 * time.Minute), Integrity: IntegrityHashMismatch},
		{Name: "snapshot_202612061000.db", Time: now.Add(-2 * time.Hour), Integrity: IntegrityOK},
		{Name: "snapshot_202612060900.db", Time: now.Add(-3 * time.Hour), Integrity: IntegrityOK},
	}
	n := NewestVerified(entries)
	if n == nil || n.Name != "snapshot_202612061000.db" {
		t.Fatalf("newest verified: %+v (a damaged newer one must not count)", n)
	}
	if err := CheckAge("cluster k8s", n.Name, n.Time, 3*time.Hour, now); err != nil {
		t.Errorf("2h old under --max-age 3h: %v", err)
	}
	err := CheckAge("cluster k8s", n.Name, n.Time, time.Hour, now)
	if err == nil || !strings.Contains(err.Error(), "snapshot_202612061000.db, is 2h0m0s old") || strings.Contains(err.Error(), "\n") {
		t.Errorf("2h old over --max-age 1h: %v", err)
	}
	if err := CheckAge("cluster k8s", "", time.Time{}, time.Hour, now); err == nil || !strings.Contains(err.Error(), "no verified backup") {
		t.Errorf("no backup: %v", err)
	}
	if NewestVerified(entries[1:2]) != nil {
		t.Error("a damaged backup counted as verified")
	}
}
