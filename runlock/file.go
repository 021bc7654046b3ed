package runlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// File is a held lock file on the bastion, its heartbeat refreshed until Release.
type File struct {
	Path string
	// Holder is what the file says; Holder.Broke is set after a take-over.
	Holder Holder

	mu   sync.Mutex
	lost error
	stop chan struct{}
	done chan struct{}
}

// Peek reads the lock at path without taking it: nil when there is none.
// The error says whether it looks stale.
func Peek(path string) *HeldError {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	self := NewHolder("", "", "")
	fi, _ := os.Stat(path)
	var mod time.Time
	if fi != nil {
		mod = fi.ModTime()
	}
	h := parse(b)
	stale, why := judge(h, mod, &self, time.Now())
	return &HeldError{Where: path + " on the bastion", Holder: h, Raw: string(b), Stale: stale, Why: why}
}

// Acquire takes the lock file at path for self. When another run holds it,
// the error is a *HeldError naming it; a stale one is taken over only with
// breakStale, and then the returned File's Holder.Broke names the previous
// holder. The heartbeat runs until Release.
func Acquire(path string, self Holder, breakStale bool) (*File, error) {
	unlock, err := guard(path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		_, err = f.Write(append(self.marshal(), '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("writing the lock %s: %w", path, err)
		}
		return start(path, self), nil
	}
	if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("taking the lock %s: %w", path, err)
	}
	held := Peek(path)
	if held == nil { // removed between the two calls: guard() makes this a holder that did not use it
		return nil, fmt.Errorf("lock %s changed while it was read: run again", path)
	}
	if !held.Stale || !breakStale {
		return nil, held
	}
	if held.Holder != nil {
		old := *held.Holder
		old.Broke = nil
		self.Broke = &old
	} else {
		self.Broke = &Holder{Command: "(unreadable lock: " + oneLine(held.Raw) + ")"}
	}
	if err := writeAtomic(path, self.marshal()); err != nil {
		return nil, fmt.Errorf("taking over the stale lock %s: %w", path, err)
	}
	return start(path, self), nil
}

// guard serialises every look at and change of the lock file between
// ezrestore processes (flock on a file beside it): two runs breaking the same
// stale lock cannot both win, and a heartbeat never rewrites a lock that was
// taken over a moment before.
func guard(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	g, err := os.OpenFile(path+".guard", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock guard: %w", err)
	}
	if err := syscall.Flock(int(g.Fd()), syscall.LOCK_EX); err != nil {
		g.Close()
		return nil, fmt.Errorf("lock guard %s: %w", g.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(g.Fd()), syscall.LOCK_UN)
		g.Close()
	}, nil
}

func writeAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func start(path string, h Holder) *File {
	f := &File{Path: path, Holder: h, stop: make(chan struct{}), done: make(chan struct{})}
	go f.beat()
	return f
}

func (f *File) beat() {
	defer close(f.done)
	t := time.NewTicker(HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.Update(func(h *Holder) { h.Heartbeat = time.Now().UTC().Truncate(time.Second) })
		}
	}
}

// Update changes what the lock file says (the run id once it is known, the
// heartbeat) if the file is still this holder's; otherwise it notes the lock
// as lost (Release reports it).
func (f *File) Update(change func(*Holder)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lost != nil {
		return
	}
	unlock, err := guard(f.Path)
	if err != nil {
		f.lost = err
		return
	}
	defer unlock()
	if err := f.ours(); err != nil {
		f.lost = err
		return
	}
	change(&f.Holder)
	if err := writeAtomic(f.Path, f.Holder.marshal()); err != nil {
		f.lost = fmt.Errorf("refreshing the lock %s: %w", f.Path, err)
	}
}

// ours checks that the file still names this holder; the guard is held.
func (f *File) ours() error {
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return fmt.Errorf("the lock %s is gone: %w", f.Path, err)
	}
	if h := parse(b); h == nil || h.ID != f.Holder.ID {
		who := "an unreadable holder"
		if h != nil {
			who = h.String()
		}
		return fmt.Errorf("the lock %s was taken over by %s while this run held it", f.Path, who)
	}
	return nil
}

// Release stops the heartbeat and removes the file if it is still this
// holder's. The error says when the lock was lost or could not be removed.
func (f *File) Release() error {
	if f == nil {
		return nil
	}
	select {
	case <-f.stop:
		return nil // released already
	default:
		close(f.stop)
	}
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lost != nil {
		return f.lost
	}
	unlock, err := guard(f.Path)
	if err != nil {
		return err
	}
	defer unlock()
	if err := f.ours(); err != nil {
		return err
	}
	if err := os.Remove(f.Path); err != nil {
		return fmt.Errorf("removing the lock %s: %w; remove it by hand once no ezrestore run uses this cluster", f.Path, err)
	}
	return nil
}
