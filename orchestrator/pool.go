package orchestrator

import (
	"context"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/ezrestore/ezrestore/inventory"
)

// Pool holds one connection per reachable host, opened once and reused by
// every step, and the error of every host that could not be reached.
type Pool struct {
	mu     sync.Mutex
	conns  map[string]Conn
	failed map[string]error
}

// Connect dials hosts in parallel, at most forks at a time (forks < 1 means
// all at once). It returns a Pool in every case, with the reachable hosts in
// it, plus a *multierror.Error of the per-host failures, so the caller decides
// what an unreachable host means (a worker is skipped, an etcd member stops
// the restore). A host listed twice is dialled once.
func Connect(ctx context.Context, hosts []*inventory.Host, opts DialOptions, forks int) (*Pool, error) {
	p := &Pool{conns: map[string]Conn{}, failed: map[string]error{}}
	var unique []*inventory.Host
	seen := map[string]bool{}
	for _, h := range hosts {
		if !seen[h.Name] {
			seen[h.Name] = true
			unique = append(unique, h)
		}
	}
	if forks < 1 || forks > len(unique) {
		forks = len(unique)
	}
	errs := make([]error, len(unique))
	sem := make(chan struct{}, max(forks, 1))
	var wg sync.WaitGroup
	for i, h := range unique {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = hostError(h, ctx.Err())
				return
			}
			defer func() { <-sem }()
			c, err := Dial(ctx, h, opts)
			if err != nil {
				errs[i] = err
				return
			}
			p.mu.Lock()
			p.conns[h.Name] = c
			p.mu.Unlock()
		}()
	}
	wg.Wait()
	var merr *multierror.Error
	for i, err := range errs {
		if err != nil {
			p.failed[unique[i].Name] = err
			merr = multierror.Append(merr, err)
		}
	}
	// Keep the per-host errors in inventory order (they were appended so).
	return p, merr.ErrorOrNil()
}

func hostError(h *inventory.Host, err error) error {
	return &labelledError{label: hostLabel(h), err: err}
}

type labelledError struct {
	label string
	err   error
}

func (e *labelledError) Error() string { return e.label + ": " + e.err.Error() }
func (e *labelledError) Unwrap() error { return e.err }

// Get returns the connection to the host named hostName in the inventory.
func (p *Pool) Get(hostName string) (Conn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.conns[hostName]
	return c, ok
}

// Failed returns why each unreachable host could not be reached, by inventory name.
func (p *Pool) Failed() map[string]error {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]error, len(p.failed))
	for k, v := range p.failed {
		out[k] = v
	}
	return out
}

// Close closes every connection; the pool is empty afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]Conn{}
	p.mu.Unlock()
	var merr *multierror.Error
	for _, c := range conns {
		if err := c.Close(); err != nil {
			merr = multierror.Append(merr, err)
		}
	}
	return merr.ErrorOrNil()
}
