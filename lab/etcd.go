package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The files of lab/etcdbuild, the module etcd 3.5+ is built in. They are
// repeated here because go:embed cannot reach into another module;
// TestEtcdbuildSourcesMatch keeps them equal to the files on disk.
var etcdbuildFiles = map[string]string{
	"go.mod": `// The module the lab builds etcd 3.5+ in (see doc.go). It is not part of the
// main module: the lab copies it, pins one etcd version and tidies the copy.
module github.com/ezrestore/ezrestore/lab/etcdbuild

go 1.24
`,
	"etcd/main.go": `// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3 at the
// version the lab pins (etcd's own main does exactly this).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
`,
}

// The modules whose `package main` is copied as is into the build module.
var etcdUpstreamMains = map[string]string{
	"etcdctl": "go.etcd.io/etcd/etcdctl/v3",
	"etcdutl": "go.etcd.io/etcd/etcdutl/v3",
}

const etcdServerModule = "go.etcd.io/etcd/server/v3"

// DebianEtcdVersion is the version of etcd-server in the base, as "3.4.23".
func DebianEtcdVersion(baseRoot string) string {
	f, err := os.Open(filepath.Join(baseRoot, "var/lib/dpkg/status"))
	if err != nil {
		return "3.4"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	in := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Package: "):
			in = line == "Package: etcd-server"
		case in && strings.HasPrefix(line, "Version: "):
			v := strings.TrimPrefix(line, "Version: ")
			if i := strings.IndexAny(v, "-+~"); i > 0 {
				v = v[:i]
			}
			return v
		}
	}
	return "3.4"
}

// EnsureEtcd returns the directory holding etcd, etcdctl and etcdutl of the
// latest patch of minor ("3.5", "3.6", "3.7"), building them first if the
// cache has none, and the release as "3.6.16". For minor "" (Debian's 3.4)
// it returns "" and "3.4": the hosts use the base's own binaries.
func EnsureEtcd(ctx context.Context, minor string, out io.Writer) (dir, release string, err error) {
	if minor == "" || minor == "3.4" {
		return "", "3.4", nil
	}
	root := filepath.Join(CacheDir, "etcd")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", "", err
	}
	release, err = latestPatch(ctx, minor, root)
	if err != nil {
		return "", "", err
	}
	dir = filepath.Join(root, release)
	if etcdDone(dir) {
		return dir, release, nil
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if etcdDone(dir) {
		return dir, release, nil
	}
	start := time.Now()
	logf(out, "etcd: building %s from the Go module proxy (a minute or two)", release)
	if err := buildEtcd(ctx, release, dir); err != nil {
		return "", "", err
	}
	logf(out, "etcd: built %s in %s", release, time.Since(start).Round(time.Second))
	return dir, release, nil
}

func etcdDone(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".ezrestore-etcd"))
	return err == nil
}

var patchRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)$`)

// latestPatch resolves a minor to its latest patch release through the Go
// module proxy, remembering the answer for a day. Without the proxy, the
// newest build of that minor in the cache is used.
func latestPatch(ctx context.Context, minor, root string) (string, error) {
	memo := filepath.Join(root, "latest-"+minor)
	if st, err := os.Stat(memo); err == nil && time.Since(st.ModTime()) < 24*time.Hour {
		if data, err := os.ReadFile(memo); err == nil {
			if v := strings.TrimSpace(string(data)); v != "" {
				return v, nil
			}
		}
	}
	v, err := resolvePatch(ctx, minor)
	if err == nil {
		_ = os.WriteFile(memo, []byte(v+"\n"), 0o644)
		return v, nil
	}
	var cached []string
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), minor+".") && etcdDone(filepath.Join(root, e.Name())) {
			cached = append(cached, e.Name())
		}
	}
	if len(cached) == 0 {
		return "", fmt.Errorf("finding the latest etcd %s: %w", minor, err)
	}
	sort.Slice(cached, func(i, j int) bool { return patchOf(cached[i]) < patchOf(cached[j]) })
	return cached[len(cached)-1], nil
}

func patchOf(v string) int {
	i := strings.LastIndexByte(v, '.')
	n, _ := strconv.Atoi(v[i+1:])
	return n
}

func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go", nil
	}
	return "", fmt.Errorf("building etcd 3.5+ for the lab needs a Go toolchain (go on PATH or /usr/local/go)")
}

func goEnv(extra ...string) []string {
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOWORK=off")
	return append(env, extra...)
}

func resolvePatch(ctx context.Context, minor string) (string, error) {
	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "ezrestore-etcdver-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "list", "-m", "-json", "-versions", etcdServerModule+"@latest")
	cmd.Dir = tmp
	cmd.Env = goEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m -versions %s: %w", etcdServerModule, err)
	}
	var m struct{ Versions []string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", err
	}
	best := -1
	for _, v := range m.Versions {
		p := patchRE.FindStringSubmatch(v)
		if p == nil || p[1]+"."+p[2] != minor {
			continue
		}
		if n, _ := strconv.Atoi(p[3]); n > best {
			best = n
		}
	}
	if best < 0 {
		return "", fmt.Errorf("the Go module proxy lists no etcd %s release", minor)
	}
	return fmt.Sprintf("%s.%d", minor, best), nil
}

// buildEtcd builds etcd, etcdctl and etcdutl of release into dir, through a
// scratch dir renamed into place at the end.
func buildEtcd(ctx context.Context, release, dir string) error {
	b, err := startBuild(ctx, dir, etcdbuildFiles)
	if err != nil {
		return err
	}
	defer b.Close()
	run, tmp, src := b.Go, b.Tmp, b.Src
	v := "v" + release
	mods := []string{etcdServerModule + "@" + v}
	for _, m := range []string{"etcdctl", "etcdutl"} {
		mods = append(mods, etcdUpstreamMains[m]+"@"+v)
	}
	if _, err := run(append([]string{"get"}, mods...)...); err != nil {
		return err
	}
	for _, name := range []string{"etcdctl", "etcdutl"} {
		out, err := run("mod", "download", "-json", etcdUpstreamMains[name]+"@"+v)
		if err != nil {
			return err
		}
		var m struct{ Dir string }
		if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
			return fmt.Errorf("go mod download %s: no source dir", etcdUpstreamMains[name])
		}
		if err := copyMainPackage(m.Dir, filepath.Join(src, name)); err != nil {
			return err
		}
	}
	if _, err := run("mod", "tidy"); err != nil {
		return err
	}
	bin := filepath.Join(tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if _, err := run("build", "-trimpath", "-ldflags=-s -w", "-o", bin+"/", "./etcd", "./etcdctl", "./etcdutl"); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "etcd"), "--version")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), release) {
		return fmt.Errorf("built etcd does not say it is %s: %s %v", release, out, err)
	}
	if err := os.WriteFile(filepath.Join(bin, ".ezrestore-etcd"), []byte(release+"\n"), 0o644); err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	return os.Rename(bin, dir)
}

// copyMainPackage copies the non-test Go files of an upstream package main.
func copyMainPackage(from, to string) error {
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if err := copyFile(filepath.Join(from, name), filepath.Join(to, name), 0o644); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s has no Go files", from)
	}
	return nil
}
