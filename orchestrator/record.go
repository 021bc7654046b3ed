package orchestrator

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Record is the trace a run leaves in <cluster dir>/restores/<run id>/:
// plan.json and plan.txt, events.jsonl (timestamped), outputs/ (every
// command's output), token and set-aside.txt (what was moved aside and how to
// put it back). Files are 0600 in 0700 dirs: outputs can hold cluster data.
type Record struct {
	Dir string
	mu  sync.Mutex
	ev  *os.File
	// err is the first write that failed: --from-step reads this record, so a
	// run whose record is incomplete says so (Err).
	err error
}

// Event is one line of events.jsonl.
type Event struct {
	Time     time.Time `json:"time"`
	Step     string    `json:"step,omitempty"`
	Host     string    `json:"host,omitempty"`
	Status   string    `json:"status"`
	Message  string    `json:"message,omitempty"`
	Duration float64   `json:"duration_s,omitempty"`
}

// NewRecord creates the run's record dir under parent.
func NewRecord(parent, runID string) (*Record, error) {
	dir := filepath.Join(parent, runID)
	if err := os.MkdirAll(filepath.Join(dir, "outputs"), 0o700); err != nil {
		return nil, fmt.Errorf("run record: %w", err)
	}
	if err := os.Chmod(parent, 0o700); err != nil {
		return nil, fmt.Errorf("run record: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "events.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("run record: %w", err)
	}
	return &Record{Dir: dir, ev: f}, nil
}

// Event appends an event with the current time.
func (r *Record) Event(e Event) {
	if r == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b, err := json.Marshal(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		_, err = r.ev.Write(append(b, '\n'))
	}
	r.fail(err)
}

// fail keeps the first write error; the caller holds mu.
func (r *Record) fail(err error) {
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("run record %s: %w", r.Dir, err)
	}
}

// Err is the first write to the record that failed, or nil.
func (r *Record) Err() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// WriteFile writes name in the record dir, 0600.
func (r *Record) WriteFile(name string, data []byte) error {
	if r == nil {
		return nil
	}
	p := filepath.Join(r.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o600)
}

// AppendFile appends to name in the record dir, 0600.
func (r *Record) AppendFile(name string, data []byte) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(r.Dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(data)
	return err
}

// Output keeps what one op printed.
func (r *Record) Output(stepIndex int, step, host string, op *Op, res OpResult) {
	if r == nil {
		return
	}
	if host == "" {
		host = "cluster"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s  step %q  host %s  exit %d  %.3fs\n", time.Now().UTC().Format(time.RFC3339Nano), step, host, res.ExitCode, res.Duration.Seconds())
	switch op.Kind {
	case OpRun:
		fmt.Fprintf(&b, "$ %s\n", op.Cmd)
	default:
		fmt.Fprintf(&b, "%s\n", op.Line())
	}
	if res.Stdout != "" {
		fmt.Fprintf(&b, "--- stdout\n%s\n", strings.TrimRight(res.Stdout, "\n"))
	}
	if res.Stderr != "" {
		fmt.Fprintf(&b, "--- stderr\n%s\n", strings.TrimRight(res.Stderr, "\n"))
	}
	if res.Message != "" {
		fmt.Fprintf(&b, "--- %s\n", res.Message)
	}
	err := r.AppendFile(filepath.Join("outputs", fmt.Sprintf("%02d-%s.log", stepIndex+1, sanitize(host))), []byte(b.String()))
	r.mu.Lock()
	r.fail(err)
	r.mu.Unlock()
}

// Close ends the record.
func (r *Record) Close() error {
	if r == nil {
		return nil
	}
	return r.ev.Close()
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// ReadEvents decodes a record's events.jsonl.
func ReadEvents(dir string) ([]Event, error) {
	f, err := os.Open(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var evs []Event
	dec := json.NewDecoder(f)
	for {
		var e Event
		if err := dec.Decode(&e); err == io.EOF {
			return evs, nil
		} else if err != nil {
			return evs, fmt.Errorf("%s: %w", f.Name(), err)
		}
		evs = append(evs, e)
	}
}

// Changed is true when the recorded run changed at least one host.
func Changed(events []Event) bool {
	for _, e := range events {
		if e.Status == "changed" {
			return true
		}
	}
	return false
}
