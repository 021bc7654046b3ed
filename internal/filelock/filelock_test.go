package filelock

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestLockWaitsForTheHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "x.lock")
	unlock, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, p); err == nil {
		t.Fatal("a second holder got the lock")
	}
	unlock()
	u2, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	u2()
}
