package runlock

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ezrestore/ezrestore/transport"
)

// Run is one run's whole lock: the file on the bastion, taken first (a
// second run on this bastion refuses at once), then the same lock on every
// host the run changes once connected (a run from another bastion refuses
// too). Every stale lock taken over is said aloud on Out and kept in Broke.
type Run struct {
	File       *File
	Hosts      *Hosts
	breakStale bool
	out        io.Writer
	// Broke says, one line each, which stale locks were taken over.
	Broke []string
}

// AcquireRun takes the bastion lock file at path for command on target. When
// another run holds it the error is a *HeldError naming the holder.
func AcquireRun(path, command, target string, breakStale bool, out io.Writer) (*Run, error) {
	if out == nil {
		out = io.Discard
	}
	f, err := Acquire(path, NewHolder(command, target, ""), breakStale)
	if err != nil {
		return nil, err
	}
	r := &Run{File: f, breakStale: breakStale, out: out}
	if b := f.Holder.Broke; b != nil {
		r.say(fmt.Sprintf("took over the stale lock %s of %s (--break-lock)", f.Path, b))
	}
	return r, nil
}

func (r *Run) say(msg string) {
	r.Broke = append(r.Broke, msg)
	fmt.Fprintf(r.out, "WARNING: %s\n", msg)
}

// SetRunID names the run in the bastion lock once it is known.
func (r *Run) SetRunID(id string) {
	if r != nil {
		r.File.Update(func(h *Holder) { h.RunID = id })
	}
}

// LockHosts takes the lock at RemotePath on every connection (see AcquireHosts).
func (r *Run) LockHosts(ctx context.Context, conns []transport.Conn, forks int) error {
	holder := r.File.Holder
	holder.Broke = nil
	hs, err := AcquireHosts(ctx, conns, RemotePath, holder, r.breakStale, forks)
	if err != nil {
		return fmt.Errorf("run lock on the hosts: %w", err)
	}
	r.Hosts = hs
	names := make([]string, 0, len(hs.Broke))
	for n := range hs.Broke {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r.say(fmt.Sprintf("took over the stale run lock %s on host %s of %s (--break-lock)", RemotePath, n, hs.Broke[n]))
	}
	return nil
}

// ReleaseHosts removes the hosts' locks; a host where it cannot be removed
// is said aloud on Out (never kept silently) and returned.
func (r *Run) ReleaseHosts(ctx context.Context) error {
	if r == nil || r.Hosts == nil {
		return nil
	}
	err := r.Hosts.Release(ctx)
	r.Hosts = nil // released, or said aloud: not again
	if err != nil {
		fmt.Fprintf(r.out, "WARNING: run lock not released everywhere: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return err
}

// Release removes every lock the run holds: the hosts', then the bastion's.
func (r *Run) Release(ctx context.Context) error {
	if r == nil {
		return nil
	}
	herr := r.ReleaseHosts(ctx)
	ferr := r.File.Release()
	if ferr != nil {
		fmt.Fprintf(r.out, "WARNING: bastion run lock: %v\n", ferr)
	}
	if herr != nil {
		return herr
	}
	return ferr
}
