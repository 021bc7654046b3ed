package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// KubeVersion is the Kubernetes release the lab's real control plane runs.
// Its staging modules (k8s.io/api, k8s.io/client-go, ...) are published as
// v0.<minor>.<patch>.
const KubeVersion = "1.34.4"

// The kube* names the cached build answers to: the three control-plane
// commands run on masters, kubectl on the bastion.
var kubeCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"}

// The files of lab/kubebuild, the module the control plane is built in.
// They are repeated here because go:embed cannot reach into another module;
// TestKubebuildSourcesMatch keeps them equal to the files on disk.
var kubebuildFiles = map[string]string{
	"go.mod": `// The module the lab builds Kubernetes' control plane and kubectl in (see
// doc.go). It is not part of the main module: the lab copies it, pins one
// Kubernetes version and tidies the copy.
module github.com/ezrestore/ezrestore/lab/kubebuild

go 1.24
`,
	"kube/main.go": `// Command kube is kube-apiserver, kube-controller-manager, kube-scheduler and
// kubectl in one binary: it runs the command named by the name it was started
// under (a link such as /opt/kube/bin/kube-apiserver), or by its first
// argument ("kube kubectl get pods"). Each command is assembled as the
// upstream main of that command assembles it.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones (controller-manager, apiserver validation)

	"github.com/spf13/cobra"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

var servers = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := servers[name]; !ok && name != "kubectl" && len(os.Args) > 1 {
		// "kube NAME ARGS...": run NAME as if started under that name.
		name = os.Args[1]
		os.Args = append([]string{name}, os.Args[2:]...)
	}
	if name == "kubectl" {
		logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) // nolint:errcheck
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
		return
	}
	newCmd, ok := servers[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "kube: run me as kube-apiserver, kube-controller-manager, kube-scheduler or kubectl (a link of that name, or as my first argument), not %q\n", name)
		os.Exit(2)
	}
	os.Exit(cli.Run(newCmd()))
}
`,
}

// kubeLDFlags stamps the release into k8s.io/component-base/version, which
// `kube-apiserver --version`, `kubectl version` and the API's /version
// report. The tree state "archive" is what Kubernetes' own build says of a
// build from a source archive; there is no git commit to name.
func kubeLDFlags(buildDate string) string {
	major, minor, _ := strings.Cut(KubeVersion, ".")
	minor, _, _ = strings.Cut(minor, ".")
	const pkg = "k8s.io/component-base/version"
	return strings.Join([]string{"-s", "-w",
		"-X", pkg + ".gitVersion=v" + KubeVersion,
		"-X", pkg + ".gitMajor=" + major,
		"-X", pkg + ".gitMinor=" + minor,
		"-X", pkg + ".gitCommit=",
		"-X", pkg + ".gitTreeState=archive",
		"-X", pkg + ".buildDate=" + buildDate,
	}, " ")
}

// cachedBuild is one of the lab's Kubernetes builds (the control plane's
// multi-call binary, the kubelet): its recipe, where it is cached, and how
// it is built once per machine.
type cachedBuild struct {
	// name names the cache dir (<name>-<version>-<hash>), its done marker
	// (.ezrestore-<name>) and its log lines.
	name string
	// files is the module it builds in; with the version and link flags,
	// the recipe.
	files func() map[string]string
	// what and takes are for the log line before a build.
	what, takes string
	build       func(ctx context.Context, dir string) error
}

var (
	kubeBuild = cachedBuild{name: "kube", files: func() map[string]string { return kubebuildFiles },
		what:  "Kubernetes v%s (apiserver, controller-manager, scheduler, kubectl)",
		takes: "this takes many minutes once per machine", build: buildKube}
	kubeletBuild = cachedBuild{name: "kubelet", files: func() map[string]string { return kubeletbuildFiles },
		what:  "the kubelet v%s",
		takes: "minutes, once per machine", build: buildKubelet}
)

// hash identifies the recipe: the version, the module's files and the link
// flags. A changed recipe builds anew.
func (b cachedBuild) hash() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n%s\n", b.name, KubeVersion, kubeLDFlags("DATE"))
	files := b.files()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n%s", n, len(files[n]), files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func (b cachedBuild) dir() string {
	return filepath.Join(CacheDir, b.name+"-"+KubeVersion+"-"+b.hash())
}

func (b cachedBuild) done(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".ezrestore-"+b.name))
	return err == nil
}

// ensure returns the cached build dir, building it first if the cache has
// none. One build runs per machine at a time; others wait for it.
func (b cachedBuild) ensure(ctx context.Context, out io.Writer) (string, error) {
	dir := b.dir()
	if b.done(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if b.done(dir) {
		return dir, nil
	}
	start := time.Now()
	logf(out, "%s: building "+b.what+" from the Go module proxy into %s; %s (log: %s.build.log)", b.name, KubeVersion, dir, b.takes, dir)
	if err := b.build(ctx, dir); err != nil {
		return "", err
	}
	logf(out, "%s: built v%s in %s", b.name, KubeVersion, time.Since(start).Round(time.Second))
	return dir, nil
}

// KubeHash identifies the recipe of the control plane's build.
func KubeHash() string { return kubeBuild.hash() }

// KubeDir is where the control plane's build is cached:
// /var/cache/ezrestore/kube-<version>-<recipe hash>/, holding the binary
// `kube` and links named after each command.
func KubeDir() string { return kubeBuild.dir() }

// KubeBuilt reports whether the control plane's cache is filled.
func KubeBuilt() bool { return kubeBuild.done(KubeDir()) }

// EnsureKube returns the control plane's cached build dir, building it
// first if the cache has none (many minutes: the whole control plane
// compiles).
func EnsureKube(ctx context.Context, out io.Writer) (string, error) {
	return kubeBuild.ensure(ctx, out)
}

var stagingReplaceRE = regexp.MustCompile(`^\s*(?:replace\s+)?(k8s\.io/[A-Za-z0-9._-]+)\s+=>\s+\./staging/`)

// stagingModules lists the k8s.io modules that k8s.io/kubernetes' go.mod
// replaces with directories of its own repository.
func stagingModules(goMod io.Reader) ([]string, error) {
	var mods []string
	sc := bufio.NewScanner(goMod)
	for sc.Scan() {
		if m := stagingReplaceRE.FindStringSubmatch(sc.Text()); m != nil {
			mods = append(mods, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("k8s.io/kubernetes' go.mod replaces no staging module: the build recipe no longer fits this release")
	}
	return mods, nil
}

// buildKube builds the multi-call kube binary into dir, through a scratch
// dir renamed into place at the end.
func buildKube(ctx context.Context, dir string) error {
	b, err := startBuild(ctx, dir, kubebuildFiles)
	if err != nil {
		return err
	}
	defer b.Close()
	tmp, logPath := b.Tmp, b.LogPath
	v := "v" + KubeVersion
	if err := pinKubernetes(b); err != nil {
		return err
	}
	bin := filepath.Join(tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	date := time.Now().UTC().Format("2006-01-02T15:04:05Z")
	if _, err := b.Go("build", "-trimpath", "-ldflags="+kubeLDFlags(date), "-o", filepath.Join(bin, "kube"), "./kube"); err != nil {
		return err
	}
	for _, c := range kubeCommands {
		if err := os.Symlink("kube", filepath.Join(bin, c)); err != nil {
			return err
		}
	}
	// The build must answer to its names and say its version.
	for _, c := range kubeCommands {
		args := []string{"--version"}
		if c == "kubectl" {
			args = []string{"version", "--client"}
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, c), args...)
		got, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(got), v) {
			return fmt.Errorf("built %s does not say it is %s: %s %v (log: %s)", c, v, got, err, logPath)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, ".ezrestore-kube"), []byte(v+"\n"), 0o644); err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	return os.Rename(bin, dir)
}

// pinKubernetes makes the scratch module require k8s.io/kubernetes at
// KubeVersion, with each staging module its go.mod replaces pinned to the
// published v0.Y.Z, and tidies it. The control plane and the kubelet builds
// share it, and so share Go's build cache.
func pinKubernetes(b *scratchBuild) error {
	run, logPath := b.Go, b.LogPath
	v := "v" + KubeVersion
	out, err := run("mod", "download", "-json", "k8s.io/kubernetes@"+v)
	if err != nil {
		return err
	}
	var m struct{ GoMod string }
	if err := json.Unmarshal(out, &m); err != nil || m.GoMod == "" {
		return fmt.Errorf("go mod download k8s.io/kubernetes@%s: no go.mod path (log: %s)", v, logPath)
	}
	f, err := os.Open(m.GoMod)
	if err != nil {
		return err
	}
	staging, err := stagingModules(f)
	f.Close()
	if err != nil {
		return err
	}
	edit := []string{"mod", "edit", "-require=k8s.io/kubernetes@" + v}
	stagingV := "v0." + strings.SplitN(KubeVersion, ".", 2)[1]
	for _, mod := range staging {
		edit = append(edit, "-replace="+mod+"="+mod+"@"+stagingV)
	}
	if _, err := run(edit...); err != nil {
		return err
	}
	if _, err := run("mod", "tidy"); err != nil {
		return err
	}
	return nil
}
