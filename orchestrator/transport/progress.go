package transport

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// TransferProgress is one progress bar for a transfer to one host or the same
// file fanned out to many: it shows the bytes moved on all hosts together
// against size × hosts, so an operator sees one line, not one per node. It
// draws only when stderr is a terminal; otherwise it only counts, silently.
//
//	p := NewTransferProgress("push snapshot.db to 3 hosts", size, 3)
//	defer p.Finish()
//	conn.Upload(ctx, local, remote, 0o600, p.Host(conn.Host().Name))
type TransferProgress struct {
	mu   sync.Mutex
	bar  *progressbar.ProgressBar // nil when silent
	w    io.Writer
	per  map[string]int64
	done int64
}

// NewTransferProgress starts a bar on stderr when stderr is a terminal.
func NewTransferProgress(title string, size int64, hosts int) *TransferProgress {
	return newTransferProgress(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())), title, size, hosts)
}

func newTransferProgress(w io.Writer, show bool, title string, size int64, hosts int) *TransferProgress {
	p := &TransferProgress{per: map[string]int64{}, w: w}
	if !show {
		return p
	}
	if hosts < 1 {
		hosts = 1
	}
	p.bar = progressbar.NewOptions64(size*int64(hosts),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(title),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(30),
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
		p.done += n - p.per[name]
		p.per[name] = n
		if p.bar != nil {
			p.bar.Set64(p.done)
		}
	}
}

// Done returns the bytes moved so far on all hosts.
func (p *TransferProgress) Done() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
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
