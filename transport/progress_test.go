package transport

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTransferProgressAggregatesHosts(t *testing.T) {
	var out bytes.Buffer
	p := newTransferProgress(&out, true, "push snapshot.db to 2 hosts", 1000, 2)
	a, b := p.Host("etcd1"), p.Host("etcd2")
	a(400)
	b(300)
	a(1000)
	a(200) // a retry from the start counts once
	a(1000)
	b(1000)
	p.Finish()
	if got := p.Done(); got != 2000 {
		t.Errorf("Done = %d, want 2000", got)
	}
	if s := out.String(); !strings.Contains(s, "push snapshot.db to 2 hosts") || !strings.HasSuffix(s, "\n") {
		t.Errorf("bar output %q", s)
	}
}

func TestTransferProgressSilentWhenNotATerminal(t *testing.T) {
	var out bytes.Buffer
	p := newTransferProgress(&out, false, "push", 10, 1)
	p.Host("h")(10)
	p.Finish()
	if out.Len() != 0 || p.Done() != 10 {
		t.Errorf("silent progress wrote %q, done %d", out.String(), p.Done())
	}
}

func TestMovedFormatsSizeTimeAndRate(t *testing.T) {
	for _, c := range []struct {
		n    int64
		d    time.Duration
		want string
	}{
		{33030176, 820 * time.Millisecond, "31.5 MiB in 0.82s (38.4 MiB/s)"},
		{512, time.Second, "512 B in 1.00s (512 B/s)"},
		{2 << 30, 20 * time.Second, "2.00 GiB in 20.00s (102.4 MiB/s)"},
		{5 << 10, 0, "5.00 KiB in 0.00s (- MiB/s)"},
	} {
		if got := Moved(c.n, c.d); got != c.want {
			t.Errorf("Moved(%d, %v) = %q, want %q", c.n, c.d, got, c.want)
		}
	}
}

// clockAt returns a clock the test moves by hand.
func clockAt(t0 time.Time) (func() time.Time, func(time.Duration)) {
	now := t0
	return func() time.Time { return now }, func(d time.Duration) { now = now.Add(d) }
}

func TestTransferProgressNamesEachHostAndTheSlowest(t *testing.T) {
	var out bytes.Buffer
	p := newTransferProgress(&out, true, "push snap.db", 100<<20, 3)
	clock, advance := clockAt(time.Unix(1e9, 0))
	p.now = clock
	a, b, c := p.Host("etcd1"), p.Host("etcd2"), p.Host("etcd3")
	a(0)
	b(0)
	c(0)
	if got, want := p.describe(), "push snap.db: etcd1 0%, etcd2 0%, etcd3 0%"; got != want {
		t.Errorf("at the start: describe = %q, want %q (no rate yet)", got, want)
	}
	advance(2 * time.Second)
	a(100 << 20)
	b(60 << 20)
	c(20 << 20) // 10 MiB/s: the slowest
	want := "push snap.db: etcd1 100%, etcd2 60%, etcd3 20% (slowest 10.0 MiB/s)"
	if got := p.describe(); got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
	advance(8 * time.Second)
	b(100 << 20)
	c(100 << 20)
	if got, want := p.describe(), "push snap.db: etcd1 100%, etcd2 100%, etcd3 100%"; got != want {
		t.Errorf("all done: describe = %q, want %q", got, want)
	}
	p.Finish()
	if !strings.Contains(out.String(), "etcd3") {
		t.Errorf("the bar never named a host: %q", out.String())
	}
}

func TestTransferProgressManyHostsShowsCountAndSlowest(t *testing.T) {
	p := newTransferProgress(&bytes.Buffer{}, false, "push snap.db", 1000, 7)
	clock, advance := clockAt(time.Unix(1e9, 0))
	p.now = clock
	for i := 1; i <= 7; i++ {
		p.Host(fmt.Sprintf("etcd%d", i))(0)
	}
	advance(time.Second)
	for i := 1; i <= 4; i++ {
		p.Host(fmt.Sprintf("etcd%d", i))(1000)
	}
	p.Host("etcd5")(410)
	p.Host("etcd6")(700)
	p.Host("etcd7")(900)
	want := "push snap.db: 4/7 hosts done, slowest etcd5 41% at 410 B/s"
	if got := p.describe(); got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
}

// Clear blanks the bar's line (other output is about to land there) and the
// next update draws it again.
func TestTransferProgressClearBlanksTheLine(t *testing.T) {
	var out bytes.Buffer
	p := newTransferProgress(&out, true, "push", 1000, 1)
	h := p.Host("h")
	h(100)
	drawn := out.Len()
	p.Clear()
	cleared := out.String()[drawn:]
	if !strings.HasPrefix(cleared, "\r") || !strings.HasSuffix(cleared, "\r") || strings.Trim(cleared, "\r ") != "" {
		t.Fatalf("Clear wrote %q, want the line blanked", cleared)
	}
	time.Sleep(250 * time.Millisecond) // the bar's redraw throttle
	h(600)
	if !strings.Contains(out.String()[drawn+len(cleared):], "push") {
		t.Errorf("the bar was not drawn again after Clear: %q", out.String())
	}
	p.Finish()
	silent := newTransferProgress(&out, false, "push", 10, 1)
	n := out.Len()
	silent.Clear()
	if out.Len() != n {
		t.Errorf("a silent progress wrote on Clear")
	}
}
