package runlock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ezrestore/ezrestore/fanout"
	"github.com/ezrestore/ezrestore/transport"
)

// remoteTimeout bounds one lock command on a host (take, refresh, release).
const remoteTimeout = 15 * time.Second

// Hosts is a lock held on several hosts, one file each at the same path,
// its heartbeat refreshed until Release.
type Hosts struct {
	Path   string
	Holder Holder
	// Broke lists, per host, the stale holder taken over there.
	Broke map[string]*Holder

	conns []transport.Conn
	forks int
	mu    sync.Mutex
	stop  chan struct{}
	done  chan struct{}
}

// Errors are lock problems on several hosts, one line each.
type Errors []error

func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = "  - " + strings.ReplaceAll(e.Error(), "\n", "\n    ")
	}
	return fmt.Sprintf("%d hosts:\n%s", len(es), strings.Join(lines, "\n"))
}

func (es Errors) Unwrap() []error { return es }

// AcquireHosts takes the lock at lockPath on every connection at once (up to
// forks). If any host is held by another run (a *HeldError inside the
// returned Errors) or cannot be locked, the locks just taken are removed
// again and nothing is held. A stale lock is taken over only with breakStale.
func AcquireHosts(ctx context.Context, conns []transport.Conn, lockPath string, self Holder, breakStale bool, forks int) (*Hosts, error) {
	hs := &Hosts{Path: lockPath, Holder: self, Broke: map[string]*Holder{}, forks: forks,
		stop: make(chan struct{}), done: make(chan struct{})}
	taken := make([]bool, len(conns))
	broke := make([]*Holder, len(conns))
	errs := fanout.Each(ctx, len(conns), forks, func(ctx context.Context, i int) error {
		ok, b, err := takeOne(ctx, conns[i], lockPath, self, breakStale)
		taken[i], broke[i] = ok, b
		return err
	})
	var problems Errors
	for i, err := range errs {
		c := conns[i]
		if taken[i] {
			hs.conns = append(hs.conns, c)
			if broke[i] != nil {
				hs.Broke[c.Host().Name] = broke[i]
			}
		}
		if err != nil {
			problems = append(problems, &transport.HostError{Host: c.Host().Name, Err: err})
		}
	}
	if len(problems) > 0 {
		if rerr := hs.release(ctx); rerr != nil {
			problems = append(problems, rerr)
		}
		return nil, problems
	}
	go hs.beat()
	return hs, nil
}

// takeScript creates the lock file with noclobber (an O_EXCL create) and
// prints "taken"; if it exists, "held", its modification time, and its content.
func takeScript(lockPath string, h Holder) string {
	q := transport.Quote
	return fmt.Sprintf(`umask 077
mkdir -p -- %[1]s || exit 1
if ( set -C; printf '%%s\n' %[3]s > %[2]s ) 2>/dev/null; then echo taken
else echo held; stat -c %%Y -- %[2]s; cat -- %[2]s; fi`, q(path.Dir(lockPath)), q(lockPath), q(string(h.marshal())))
}

// replaceScript swaps the file for content if it still holds exactly what was
// judged stale (its sha256), so a lock renewed meanwhile is not taken.
func replaceScript(lockPath, oldSum string, content []byte) string {
	q := transport.Quote
	return fmt.Sprintf(`umask 077
if printf '%%s  %%s\n' %[2]s %[1]s | sha256sum -c --status 2>/dev/null; then
  printf '%%s\n' %[3]s > %[1]s.tmp && mv -f -- %[1]s.tmp %[1]s && echo taken
else echo changed; fi`, q(lockPath), q(oldSum), q(string(content)))
}

func takeOne(ctx context.Context, c transport.Conn, lockPath string, self Holder, breakStale bool) (taken bool, broke *Holder, err error) {
	out, err := runLock(ctx, c, takeScript(lockPath, self))
	if err != nil {
		return false, nil, fmt.Errorf("taking the run lock %s: %w", lockPath, err)
	}
	first, rest, _ := strings.Cut(out, "\n")
	switch first {
	case "taken":
		return true, nil, nil
	case "held":
	default:
		return false, nil, fmt.Errorf("taking the run lock %s: unexpected answer %q", lockPath, oneLine(out))
	}
	modLine, content, _ := strings.Cut(rest, "\n")
	secs, _ := strconv.ParseInt(strings.TrimSpace(modLine), 10, 64)
	h := parse([]byte(content))
	stale, why := judge(h, time.Unix(secs, 0), &self, time.Now())
	held := &HeldError{Where: fmt.Sprintf("%s on host %s", lockPath, c.Host().Name), Holder: h, Raw: content, Stale: stale, Why: why}
	if !stale || !breakStale {
		return false, nil, held
	}
	next := self
	if h != nil {
		old := *h
		old.Broke = nil
		next.Broke = &old
	} else {
		next.Broke = &Holder{Command: "(unreadable lock: " + oneLine(content) + ")"}
	}
	sum := sha256.Sum256([]byte(content))
	out, err = runLock(ctx, c, replaceScript(lockPath, hex.EncodeToString(sum[:]), next.marshal()))
	if err != nil {
		return false, nil, fmt.Errorf("taking over the stale run lock %s: %w", lockPath, err)
	}
	if strings.TrimSpace(out) != "taken" {
		return false, nil, fmt.Errorf("the stale run lock %s changed while it was being taken over: run again", lockPath)
	}
	return true, next.Broke, nil
}

// runLock runs a lock command with its own time limit; a non-zero exit is an error.
func runLock(ctx context.Context, c transport.Conn, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	r, err := c.Run(ctx, cmd)
	if err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		msg := strings.TrimSpace(string(r.Stderr))
		if msg == "" {
			msg = strings.TrimSpace(string(r.Stdout))
		}
		return "", fmt.Errorf("exit status %d: %s", r.ExitCode, oneLine(msg))
	}
	return string(r.Stdout), nil
}

// ownedScript runs then if the lock file is still this holder's (its lock
// id is in it), else prints "lost" and the file's content.
func ownedScript(lockPath, id, then string) string {
	q := transport.Quote
	return fmt.Sprintf(`if grep -qF -- %[2]s %[1]s 2>/dev/null; then %[3]s
else echo lost; cat -- %[1]s 2>/dev/null; fi`, q(lockPath), q(`"lock_id":"`+id+`"`), then)
}

func (hs *Hosts) beat() {
	defer close(hs.done)
	t := time.NewTicker(HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-hs.stop:
			return
		case <-t.C:
			hs.refresh()
		}
	}
}

// refresh writes a new heartbeat on every host whose lock is still this
// holder's. A host that cannot be refreshed now is retried at the next beat;
// Release reports a lock it cannot remove or that was taken over.
func (hs *Hosts) refresh() {
	hs.mu.Lock()
	hs.Holder.Heartbeat = time.Now().UTC().Truncate(time.Second)
	content := hs.Holder.marshal()
	hs.mu.Unlock()
	q := transport.Quote
	write := fmt.Sprintf("umask 077; printf '%%s\\n' %[2]s > %[1]s.tmp && mv -f -- %[1]s.tmp %[1]s && echo refreshed", q(hs.Path), q(string(content)))
	cmd := ownedScript(hs.Path, hs.Holder.ID, write)
	fanout.Each(context.Background(), len(hs.conns), hs.forks, func(ctx context.Context, i int) error {
		_, _ = runLock(ctx, hs.conns[i], cmd)
		return nil
	})
}

// Release stops the heartbeat and removes the lock on every host where it is
// still this holder's. Hosts where it could not be removed (unreachable now)
// or was taken over are in the error: a lock is never silently kept.
func (hs *Hosts) Release(ctx context.Context) error {
	if hs == nil {
		return nil
	}
	select {
	case <-hs.stop:
		return nil
	default:
		close(hs.stop)
	}
	<-hs.done
	return hs.release(ctx)
}

func (hs *Hosts) release(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	cmd := ownedScript(hs.Path, hs.Holder.ID, "rm -f -- "+transport.Quote(hs.Path)+" && echo released")
	errs := fanout.Each(ctx, len(hs.conns), hs.forks, func(ctx context.Context, i int) error {
		out, err := runLock(ctx, hs.conns[i], cmd)
		switch {
		case err != nil:
			return fmt.Errorf("the run lock %s could not be removed (%w); once no ezrestore run uses this cluster, remove it there by hand (a later run also takes it over with --break-lock once its heartbeat is %v old)", hs.Path, err, StaleAfter)
		case strings.HasPrefix(out, "lost"):
			return fmt.Errorf("the run lock %s was taken over by another run while this one held it; left in place: %s", hs.Path, oneLine(strings.TrimPrefix(out, "lost")))
		}
		return nil
	})
	var problems Errors
	for i, err := range errs {
		if err != nil {
			problems = append(problems, &transport.HostError{Host: hs.conns[i].Host().Name, Err: err})
		}
	}
	if len(problems) > 0 {
		return problems
	}
	return nil
}

// Taken lists the hosts holding this lock.
func (hs *Hosts) Taken() []string {
	var out []string
	for _, c := range hs.conns {
		out = append(out, c.Host().Name)
	}
	return out
}
