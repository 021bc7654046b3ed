// Package runlock keeps two ezrestore runs from working on one cluster at
// once. A run holds a lock file on the bastion (created with O_EXCL, 0600)
// and one on every host it changes (created atomically with the shell's
// noclobber, over the run's own SSH connection). Each file names its holder:
// bastion host, user, pid, run id, command, start and heartbeat time. The
// holder refreshes the heartbeat while it runs, so a holder that died is told
// apart from a live one: on the same bastion its pid is gone, anywhere its
// heartbeat is old. Such a stale lock is only taken over when the operator
// says so (--break-lock), and the take-over names the previous holder.
//
// It knows nothing of etcd, clusters or restores: callers say where the lock
// lives and on which connections.
package runlock

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"syscall"
	"time"
)

// FileName is the bastion lock's name inside the cluster dir.
const FileName = "ezrestore.lock"

// RemotePath is the lock on each host. It sits outside etcd's data dir on
// purpose: it is known before anything reads the etcd unit (so the lock is
// taken before the first look at the host), it does not move when a restore
// renames member dirs, and the same path serves every host whatever its unit
// says, so a second bastion with a copy of the inventory meets it too.
const RemotePath = "/var/lib/ezrestore/lock"

// HeartbeatEvery is how often a holder refreshes its heartbeat.
const HeartbeatEvery = 10 * time.Second

// StaleAfter is how old a heartbeat must be before its lock looks stale:
// several missed beats, so a busy bastion is not mistaken for a dead one.
const StaleAfter = 60 * time.Second

// Holder is what a lock file says about the run holding it.
type Holder struct {
	// ID tells this lock from any other, so a holder never removes or
	// refreshes a lock that another run took over.
	ID      string `json:"lock_id"`
	Host    string `json:"bastion_host"`
	User    string `json:"user"`
	PID     int    `json:"pid"`
	RunID   string `json:"run_id,omitempty"`
	Command string `json:"command"`
	// Target names what is locked (the cluster), for messages.
	Target    string    `json:"target,omitempty"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
	// Broke is the stale holder this lock took over with --break-lock.
	Broke *Holder `json:"broke,omitempty"`
}

// NewHolder describes this process as a holder of a lock for command on target.
func NewHolder(command, target, runID string) Holder {
	host, _ := os.Hostname()
	name := fmt.Sprint(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	now := time.Now().UTC().Truncate(time.Second)
	return Holder{ID: hex.EncodeToString(id[:]), Host: host, User: name, PID: os.Getpid(),
		RunID: runID, Command: command, Target: target, Started: now, Heartbeat: now}
}

// String names the holder in one phrase.
func (h *Holder) String() string {
	run := ""
	if h.RunID != "" {
		run = " run " + h.RunID
	}
	return fmt.Sprintf("`ezrestore %s`%s (pid %d, user %s, on bastion %s)", h.Command, run, h.PID, h.User, h.Host)
}

func (h *Holder) marshal() []byte {
	b, _ := json.Marshal(h)
	return b
}

// parse reads a lock file's content; nil when it holds no readable holder.
func parse(b []byte) *Holder {
	var h Holder
	if err := json.Unmarshal(b, &h); err != nil || h.ID == "" {
		return nil
	}
	return &h
}

// judge says whether a lock looks stale to self, and why. modTime is the
// file's own time, used when the content cannot be read.
func judge(h *Holder, modTime time.Time, self *Holder, now time.Time) (stale bool, why string) {
	if h == nil {
		if age := now.Sub(modTime); age > StaleAfter {
			return true, fmt.Sprintf("its content is unreadable and it was last written %s ago", age.Truncate(time.Second))
		}
		return false, ""
	}
	if h.Host == self.Host && h.PID > 0 && !pidAlive(h.PID) {
		return true, fmt.Sprintf("its pid %d is gone on this bastion (%s)", h.PID, h.Host)
	}
	if age := now.Sub(h.Heartbeat); age > StaleAfter {
		return true, fmt.Sprintf("its heartbeat is %s old (a live holder refreshes it every %v)", age.Truncate(time.Second), HeartbeatEvery)
	}
	return false, ""
}

// pidAlive is true when a process with pid exists on this machine (EPERM:
// it exists, owned by someone else).
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// HeldError is a lock held by another run: where, by whom, since when, and
// whether it looks stale (then --break-lock takes it over).
type HeldError struct {
	// Where is the lock: "PATH on the bastion" or "PATH on host H".
	Where  string
	Holder *Holder
	// Raw is the file's content when it names no readable holder.
	Raw   string
	Stale bool
	// Why says why it looks stale.
	Why string
	// BreakFlag is the flag that takes a stale lock over, for the message.
	BreakFlag string
}

func (e *HeldError) Error() string {
	var b strings.Builder
	if h := e.Holder; h != nil {
		what := h.Target
		if what == "" {
			what = "this cluster"
		}
		fmt.Fprintf(&b, "%s is locked by %s since %s (%s ago; heartbeat %s ago); lock %s",
			what, h, h.Started.Local().Format("2006-01-02 15:04:05 MST"),
			since(h.Started), since(h.Heartbeat), e.Where)
	} else {
		fmt.Fprintf(&b, "locked by an unreadable lock %s: %q", e.Where, oneLine(e.Raw))
	}
	flag := e.BreakFlag
	if flag == "" {
		flag = "--break-lock"
	}
	if e.Stale {
		fmt.Fprintf(&b, ".\nIt looks stale: %s. If no ezrestore run is working on this cluster, run again with %s to take it over", e.Why, flag)
	} else {
		b.WriteString(".\nAnother run is working on this cluster: wait for it to end (it removes the lock), then run again")
	}
	return b.String()
}

func since(t time.Time) string {
	d := time.Since(t)
	if d < 0 {
		d = 0
	}
	return d.Truncate(time.Second).String()
}

func oneLine(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\n", " "))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
