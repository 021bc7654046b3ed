package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The kubelet is built as a cached artifact of its own, beside the control
// plane's (KubeDir), so adding it left the control plane's cache valid. Both
// pin the same k8s.io modules (pinKubernetes), so a warm Go build cache
// serves most of the kubelet's packages.
var kubeletbuildFiles = map[string]string{
	"go.mod": `// The module the ezrestore lab builds the kubelet in (lab/kubelet.go): the
// lab pins k8s.io/kubernetes and its staging modules into a copy of it.
module github.com/ezrestore/ezrestore/lab/kubeletbuild

go 1.24
`,
	// The upstream cmd/kubelet main, which is package main and so cannot be
	// built from another module: the same assembly of the same packages.
	"kubelet/main.go": `// Command kubelet is the Kubernetes node agent, assembled as upstream's
// cmd/kubelet assembles it.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
`,
}

// KubeletHash identifies the kubelet build's recipe.
func KubeletHash() string { return kubeletBuild.hash() }

// KubeletDir is where the kubelet build is cached:
// /var/cache/ezrestore/kubelet-<version>-<recipe hash>/kubelet.
func KubeletDir() string { return kubeletBuild.dir() }

// KubeletBuilt reports whether the kubelet cache is filled.
func KubeletBuilt() bool { return kubeletBuild.done(KubeletDir()) }

// EnsureKubelet returns the cached kubelet build dir, building it first if
// the cache has none (minutes; fewer after the control plane's build, whose
// Go build cache it shares).
func EnsureKubelet(ctx context.Context, out io.Writer) (string, error) {
	return kubeletBuild.ensure(ctx, out)
}

func buildKubelet(ctx context.Context, dir string) error {
	b, err := startBuild(ctx, dir, kubeletbuildFiles)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := pinKubernetes(b); err != nil {
		return err
	}
	bin := filepath.Join(b.Tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	date := time.Now().UTC().Format("2006-01-02T15:04:05Z")
	if _, err := b.Go("build", "-trimpath", "-ldflags="+kubeLDFlags(date), "-o", filepath.Join(bin, "kubelet"), "./kubelet"); err != nil {
		return err
	}
	v := "v" + KubeVersion
	got, err := exec.CommandContext(ctx, filepath.Join(bin, "kubelet"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(got), v) {
		return fmt.Errorf("built kubelet does not say it is %s: %s %v (log: %s)", v, got, err, b.LogPath)
	}
	if err := os.WriteFile(filepath.Join(bin, ".ezrestore-kubelet"), []byte(v+"\n"), 0o644); err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	return os.Rename(bin, dir)
}
