// Package fanout is the one way ezrestore works on many hosts at once: a
// bounded, cancellable parallel loop. Every per-host loop (connecting,
// preflight, a step's tasks, health polls, backups) goes through Each, so the
// --forks bound and Ctrl-C are honoured everywhere the same way.
//
// It knows nothing of hosts or SSH and imports nothing of the project.
package fanout

import (
	"context"
	"sync"
)

// Each calls fn(ctx, i) for every i in [0, n), at most limit at a time
// (limit < 1: all at once), and waits for all of them. Once ctx is done no new
// call starts; the index of each call not started gets ctx's error. It returns
// one error per index (nil where fn succeeded), in index order, so callers can
// pair errors with their hosts without locking.
func Each(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	if n == 0 {
		return errs
	}
	if limit < 1 || limit > n {
		limit = n
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < n; j++ {
				errs[j] = ctx.Err()
			}
			wg.Wait()
			return errs
		}
		// A cancel that races with a free slot must not start new work.
		if err := ctx.Err(); err != nil {
			<-sem
			for j := i; j < n; j++ {
				errs[j] = err
			}
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(ctx, i)
		}(i)
	}
	wg.Wait()
	return errs
}

// Count is the number of non-nil errors.
func Count(errs []error) int {
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
		}
	}
	return n
}
