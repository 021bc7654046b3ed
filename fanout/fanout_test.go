package fanout

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachBoundsConcurrency(t *testing.T) {
	var now, peak atomic.Int32
	errs := Each(context.Background(), 20, 3, func(ctx context.Context, i int) error {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		now.Add(-1)
		if i%7 == 0 {
			return errors.New("seven")
		}
		return nil
	})
	if p := peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak concurrency %d, want 2..3 with limit 3", p)
	}
	if Count(errs) != 3 { // 0, 7, 14
		t.Fatalf("errors %v, want 3", errs)
	}
	for i, err := range errs {
		if (i%7 == 0) != (err != nil) {
			t.Fatalf("error at %d is %v", i, err)
		}
	}
}

func TestEachUnlimited(t *testing.T) {
	var now, peak atomic.Int32
	release := make(chan struct{})
	done := make(chan []error)
	go func() {
		done <- Each(context.Background(), 10, 0, func(ctx context.Context, i int) error {
			if n := now.Add(1); n > peak.Load() {
				peak.Store(n)
			}
			<-release
			return nil
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for now.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if Count(<-done) != 0 || peak.Load() != 10 {
		t.Fatalf("limit 0 must run all 10 at once, peak %d", peak.Load())
	}
}

func TestEachStopsStartingOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	errs := Each(ctx, 10, 1, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 2 {
			cancel()
		}
		return nil
	})
	if s := started.Load(); s != 3 {
		t.Fatalf("%d calls started, want 3 (cancelled during the third)", s)
	}
	for i := 3; i < 10; i++ {
		if !errors.Is(errs[i], context.Canceled) {
			t.Fatalf("index %d not started should carry context.Canceled, got %v", i, errs[i])
		}
	}
	if Count(errs[:3]) != 0 {
		t.Fatalf("started calls failed: %v", errs[:3])
	}
}
