// Package labtest brings a lab up for an end-to-end test, or skips the test
// when end-to-end tests are off (EZRESTORE_E2E unset), and takes it down
// when the test ends. It is for _test.go files only and imports only lab.
package labtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ezrestore/ezrestore/lab"
)

// Up brings up a lab for t and takes it down when t ends. It skips t unless
// EZRESTORE_E2E=1 (`make test` sets it); with EZRESTORE_E2E=1 a machine that
// cannot run a lab (not root, tools missing) fails t with what is missing.
// opts.Name must be unique per test, since packages' tests run at once;
// opts.Base defaults to a fresh temporary dir; opts.Out defaults to t.Log.
func Up(t testing.TB, opts lab.Options) *lab.Lab {
	t.Helper()
	if os.Getenv("EZRESTORE_E2E") != "1" {
		t.Skip("set EZRESTORE_E2E=1 (make test does)")
	}
	if err := lab.Preflight(); err != nil {
		t.Fatalf("EZRESTORE_E2E=1 but this machine cannot run a lab: %v", err)
	}
	if opts.Base == "" {
		opts.Base = t.TempDir()
	}
	if opts.Out == nil {
		opts.Out = logWriter{t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, opts)
	// Registered even on failure: Down clears whatever part came up.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		dl := l
		if dl == nil {
			var err error
			if dl, err = lab.Open(opts.Name, ""); err != nil {
				return
			}
		}
		if err := dl.Down(ctx); err != nil {
			t.Errorf("lab down %s: %v", opts.Name, err)
		}
	})
	if err != nil {
		t.Fatalf("lab up %s: %v", opts.Name, err)
	}
	return l
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	s := string(p)
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	w.t.Log(s)
	return len(p), nil
}
