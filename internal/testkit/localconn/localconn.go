// Package localconn is a transport.Conn that runs commands in this
// machine's sh, for unit tests whose scripts must meet a real shell, du,
// stat and df on real dirs. It is for _test.go files only.
package localconn

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ezrestore/ezrestore/inventory"
	"github.com/ezrestore/ezrestore/transport"
)

// Conn runs every command locally as host H; it neither uploads nor downloads.
type Conn struct{ H *inventory.Host }

func (c Conn) Host() *inventory.Host { return c.H }

func (c Conn) Run(ctx context.Context, cmd string) (transport.Result, error) {
	var stdout, stderr strings.Builder
	x := exec.CommandContext(ctx, "sh", "-c", cmd)
	x.Stdout, x.Stderr = &stdout, &stderr
	err := x.Run()
	var ee *exec.ExitError
	res := transport.Result{Stdout: []byte(stdout.String()), Stderr: []byte(stderr.String())}
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitCode()
		return res, nil
	}
	return res, err
}

func (c Conn) Upload(context.Context, string, string, os.FileMode, func(int64)) error {
	return errors.New("no uploads here")
}

func (c Conn) Download(context.Context, string, string, func(int64)) error {
	return errors.New("no downloads here")
}

func (c Conn) Close() error { return nil }

// MkFile writes size zero bytes at p (0600), making its dirs (0700).
func MkFile(t testing.TB, p string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
}
