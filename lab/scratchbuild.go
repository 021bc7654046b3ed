package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// scratchBuild is a build of a module of our own (lab/etcdbuild,
// lab/kubebuild) into a cache dir: its sources are written to a scratch dir
// beside the cache dir, every go command is logged to <dir>.build.log, and
// the caller renames the result into place only once it works, so a killed
// build never looks finished. The caller holds the cache dir's lock.
type scratchBuild struct {
	ctx     context.Context
	goBin   string
	Tmp     string // the scratch dir, removed by Close
	Src     string // the module's sources, the go commands' working dir
	LogPath string
	log     *os.File
}

// startBuild clears scratch dirs of builds that were killed, writes files
// (path relative to the module -> content) and opens the log.
func startBuild(ctx context.Context, dir string, files map[string]string) (*scratchBuild, error) {
	goBin, err := goTool()
	if err != nil {
		return nil, err
	}
	if old, _ := filepath.Glob(dir + ".tmp-*"); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	b := &scratchBuild{ctx: ctx, goBin: goBin, Tmp: fmt.Sprintf("%s.tmp-%d", dir, os.Getpid()), LogPath: dir + ".build.log"}
	b.Src = filepath.Join(b.Tmp, "src")
	for name, data := range files {
		if err := writeFile(filepath.Join(b.Src, name), []byte(data), 0o644); err != nil {
			b.Close()
			return nil, err
		}
	}
	if b.log, err = os.Create(b.LogPath); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Go runs the go command with args in the module, logging it and how long it took.
func (b *scratchBuild) Go(args ...string) ([]byte, error) {
	fmt.Fprintf(b.log, "$ go %s\n", strings.Join(args, " "))
	started := time.Now()
	cmd := exec.CommandContext(b.ctx, b.goBin, args...)
	cmd.Dir = b.Src
	cmd.Env = goEnv()
	cmd.Stderr = b.log
	out, err := cmd.Output()
	fmt.Fprintf(b.log, "# %s\n", time.Since(started).Round(time.Second))
	if err != nil {
		return nil, fmt.Errorf("go %s: %w (log: %s)", strings.Join(args, " "), err, b.LogPath)
	}
	return out, nil
}

// Close removes the scratch dir and closes the log.
func (b *scratchBuild) Close() {
	if b.log != nil {
		b.log.Close()
	}
	os.RemoveAll(b.Tmp)
}
