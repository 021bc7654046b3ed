package transport

import (
	"context"
	"os"
	"sync"
	"time"
)

// GzipFanout gathers the hosts of one step, each pushed by its own task,
// into one compressed stream (uploadGzipTo): the file is read and
// compressed once for all of them. Each Join waits until its round of the
// stream is over. A round starts once expect hosts have joined or window
// after its first join, whichever comes first (a host whose earlier op
// failed never joins); a host that joins after its round started gets a
// round of its own.
type GzipFanout struct {
	local, want string
	mode        os.FileMode
	expect      int
	window      time.Duration

	mu  sync.Mutex
	cur *gzipRound
}

type gzipRound struct {
	f       *GzipFanout
	once    sync.Once
	started bool
	timer   *time.Timer
	members []*gzipMember
}

type gzipMember struct {
	ctx      context.Context
	conn     Conn
	remote   string
	progress func(int64)
	res      StreamResult
	done     chan struct{}
}

// NewGzipFanout prepares the stream of local (checked against want on every
// host) to expect hosts.
func NewGzipFanout(local string, mode os.FileMode, want string, expect int, window time.Duration) *GzipFanout {
	return &GzipFanout{local: local, want: want, mode: mode, expect: max(expect, 1), window: window}
}

// Join sends the file to remote on c as part of the next round and returns
// this host's result once the round is over. progress gets the file bytes
// this host has taken so far.
func (f *GzipFanout) Join(ctx context.Context, c Conn, remote string, progress func(int64)) StreamResult {
	if _, ok := c.(*sshConn); !ok {
		// Not SSH (a test's connection): the one-pass push, uncompressed.
		p, err := Push(ctx, c, f.local, remote, f.mode, f.want, progress)
		return StreamResult{Host: c.Host().Name, Err: err, SHA256: p.SHA256, Raw: p.Size, Wire: p.Wire, Duration: p.Duration}
	}
	m := &gzipMember{ctx: ctx, conn: c, remote: remote, progress: progress, done: make(chan struct{})}
	f.mu.Lock()
	r := f.cur
	if r == nil || r.started {
		r = &gzipRound{f: f}
		f.cur = r
		r.timer = time.AfterFunc(f.window, r.start)
	}
	r.members = append(r.members, m)
	full := len(r.members) >= f.expect
	f.mu.Unlock()
	if full {
		r.start()
	}
	<-m.done
	return m.res
}

// start runs the round once, with the members it has by then.
func (r *gzipRound) start() {
	r.once.Do(func() {
		r.timer.Stop()
		r.f.mu.Lock()
		r.started = true
		members := r.members
		r.f.mu.Unlock()
		go r.run(members)
	})
}

func (r *gzipRound) run(members []*gzipMember) {
	conns := make([]Conn, len(members))
	remotes := make([]string, len(members))
	for i, m := range members {
		conns[i], remotes[i] = m.conn, m.remote
	}
	// The stream stops once every member's context has ended (a push runs
	// on one that Ctrl-C does not cancel: the run stops between steps).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var live sync.WaitGroup
	live.Add(len(members))
	for _, m := range members {
		stop := context.AfterFunc(m.ctx, live.Done)
		defer func() {
			if stop() {
				live.Done()
			}
		}()
	}
	go func() { live.Wait(); cancel() }()
	res := uploadGzipTo(ctx, conns, remotes, r.f.local, r.f.mode, r.f.want, func(i int, raw int64) {
		if p := members[i].progress; p != nil {
			p(raw)
		}
	})
	for i, m := range members {
		m.res = res[i]
		close(m.done)
	}
}
