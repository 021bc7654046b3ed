package transport

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// TransferProgress is one progress bar for a transfer to one host or the same
// file fanned out to many: the bar shows the bytes moved on all hosts together
// against size × hosts, and its description how far each host is, so a slow
// host stands out (every host by name up to perHostNames hosts, else the count
// done and the slowest one). It draws only when stderr is a terminal;
// otherwise it only counts, silently.
//
//	p := NewTransferProgress("push snapshot.db", size, 3)
//	defer p.Finish()
//	conn.Upload(ctx, local, remote, 0o600, p.Host(conn.Host().Name))
type TransferProgress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar // nil when silent
	w     io.Writer
	title string
	size  int64
	hosts int
	per   map[string]*hostProgress
	done  int64
	now   func() time.Time
}

// hostProgress is one host's share of a transfer.
type hostProgress struct {
	name  string
	n     int64
	start time.Time // first callback (the transfer's start on that host)
	last  time.Time // latest callback
}

// perHostNames is how many hosts the bar's description names one by one.
const perHostNames = 5

// NewTransferProgress starts a bar on stderr when stderr is a terminal.
func NewTransferProgress(title string, size int64, hosts int) *TransferProgress {
	return newTransferProgress(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())), title, size, hosts)
}

func newTransferProgress(w io.Writer, show bool, title string, size int64, hosts int) *TransferProgress {
	if hosts < 1 {
		hosts = 1
	}
	p := &TransferProgress{per: map[string]*hostProgress{}, w: w, title: title, size: size, hosts: hosts, now: time.Now}
	if !show {
		return p
	}
	p.bar = progressbar.NewOptions64(size*int64(hosts),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(title),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { io.WriteString(w, "\n") }),
	)
	return p
}

// Host returns the progress callback for Upload or Download to one host. The
// callback takes the bytes moved so far on that host; a retried transfer that
// starts again from zero is counted once.
func (p *TransferProgress) Host(name string) func(int64) {
	return func(n int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		h := p.per[name]
		if h == nil {
			h = &hostProgress{name: name, start: now}
			p.per[name] = h
		}
		p.done += n - h.n
		h.n, h.last = n, now
		if p.bar != nil {
			p.bar.Describe(p.describe())
			p.bar.Set64(p.done)
		}
	}
}

// describe is the bar's description: the title, then each host's percent
// (and the slowest one's rate), e.g.
//
//	push snap.db: etcd1 100%, etcd2 63%, etcd3 41% (slowest 12.1 MiB/s)
//
// or, past perHostNames hosts, "push snap.db: 4/7 hosts done, slowest etcd5 41% at 12.1 MiB/s".
func (p *TransferProgress) describe() string {
	hs := make([]*hostProgress, 0, len(p.per))
	for _, h := range p.per {
		hs = append(hs, h)
	}
	if len(hs) == 0 || p.size <= 0 {
		return p.title
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].name < hs[j].name })
	slow := hs[0]
	done := 0
	for _, h := range hs {
		if h.n >= p.size {
			done++
		} else if slow.n >= p.size || h.n < slow.n {
			slow = h
		}
	}
	pct := func(h *hostProgress) int64 { return min(100, h.n*100/p.size) }
	var b strings.Builder
	b.WriteString(p.title)
	b.WriteString(": ")
	if p.hosts <= perHostNames {
		for i, h := range hs {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d%%", h.name, pct(h))
		}
		if slow.n < p.size && slow.last.After(slow.start) {
			fmt.Fprintf(&b, " (slowest %s)", Rate(slow.n, slow.last.Sub(slow.start)))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%d/%d hosts done", done, p.hosts)
	if slow.n < p.size {
		fmt.Fprintf(&b, ", slowest %s %d%%", slow.name, pct(slow))
		if slow.last.After(slow.start) {
			fmt.Fprintf(&b, " at %s", Rate(slow.n, slow.last.Sub(slow.start)))
		}
	}
	return b.String()
}

// Done returns the bytes moved so far on all hosts.
func (p *TransferProgress) Done() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Clear erases the bar from its line until its next update draws it again:
// call it before other output goes to the same terminal (a transfer that
// runs beside other steps), so their lines do not land on the bar's.
func (p *TransferProgress) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil && !p.bar.IsFinished() {
		p.bar.Clear()
	}
}

// Finish ends the bar's line; call it once the transfers are over, failed or not.
func (p *TransferProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil && !p.bar.IsFinished() {
		// Leave the bar where it stopped: a failed host shows as a short bar.
		p.bar.Exit()
		io.WriteString(p.w, "\n")
	}
	p.bar = nil
}

// Bytes formats a size for people in binary units: "512 B", "31.5 MiB", "2.00 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit || u == "TiB" {
			if f < 10 {
				return fmt.Sprintf("%.2f %s", f, u)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return "" // unreachable
}

// Rate formats n bytes moved in d as a throughput, "38.4 MiB/s"; "-" when d
// is too short to say.
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "- MiB/s"
	}
	bps := float64(n) / d.Seconds()
	return Bytes(int64(bps)) + "/s"
}

// Moved is the one-line summary of a finished transfer to a host:
// "31.5 MiB in 0.82s (38.4 MiB/s)".
func Moved(n int64, d time.Duration) string {
	return fmt.Sprintf("%s in %.2fs (%s)", Bytes(n), d.Seconds(), Rate(n, d))
}
