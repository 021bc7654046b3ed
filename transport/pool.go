package transport

import (
	"context"
	"errors"
	"sync"

	"github.com/ezrestore/ezrestore/fanout"
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
// all at once). It always returns a Pool holding the reachable hosts; Failed
// says why each other host could not be reached, so the caller decides what
// an unreachable host means (a worker is skipped, an etcd member stops the
// restore). A host listed twice is dialled once.
func Connect(ctx context.Context, hosts []*inventory.Host, opts Options, forks int) *Pool {
	p := &Pool{conns: map[string]Conn{}, failed: map[string]error{}}
	var unique []*inventory.Host
	seen := map[string]bool{}
	for _, h := range hosts {
		if !seen[h.Name] {
			seen[h.Name] = true
			unique = append(unique, h)
		}
	}
	errs := fanout.Each(ctx, len(unique), forks, func(ctx context.Context, i int) error {
		c, err := Dial(ctx, unique[i], opts)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.conns[unique[i].Name] = c
		p.mu.Unlock()
		return nil
	})
	for i, err := range errs {
		if err == nil {
			continue
		}
		var de *DialError
		if !errors.As(err, &de) { // not started: cancelled
			h := unique[i]
			err = &DialError{Host: h.Name, Addr: hostAddr(h), User: loginUser(h), Err: err, Kind: classify(err)}
		}
		p.failed[unique[i].Name] = WithHint(err)
	}
	return p
}

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
	var errs []error
	for _, c := range conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
