package lab

import (
	"context"
	"fmt"
	"github.com/ezrestore/ezrestore/internal/filelock"
	"io"
	"os"
	"path/filepath"
	"sync"
)

var logMu sync.Mutex

// logf prints one progress line; out may be nil.
func logf(out io.Writer, format string, args ...any) {
	if out == nil {
		return
	}
	logMu.Lock()
	defer logMu.Unlock()
	fmt.Fprintf(out, "lab: "+format+"\n", args...)
}

// lockFile takes an exclusive flock on path, waiting until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) { return filelock.Lock(ctx, path) }

// writeFile writes data to path, creating parent directories 0755 unless they exist.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
