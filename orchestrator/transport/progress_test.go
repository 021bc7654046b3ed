package transport

import (
	"bytes"
	"strings"
	"testing"
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
