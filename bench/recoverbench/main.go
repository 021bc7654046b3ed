// recoverbench measures `ezrestore recover --namespace` of a namespace of
// -objects ConfigMaps (and what the cluster makes in it) on a lab with the
// real control plane: made with kubectl, backed up, the namespace deleted,
// then the whole recover command timed (plan, lock, write, read back), and
// the objects counted through the API afterwards. Target: under 10 s for
// 1,000 objects. Nothing is asserted; the figure is printed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ezrestore/ezrestore/lab"
)

func main() {
	bin := flag.String("bin", "bin/ezrestore", "the ezrestore binary")
	n := flag.Int("objects", 1000, "ConfigMaps in the namespace")
	name := flag.String("lab", "recoverbench", "lab name")
	flag.Parse()
	if err := run(*bin, *name, *n); err != nil {
		fmt.Fprintf(os.Stderr, "recoverbench: %v\n", err)
		os.Exit(1)
	}
}

func run(bin, name string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	base, err := os.MkdirTemp("", "ezrestore-recoverbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	l, err := lab.Up(ctx, lab.Options{Name: name, Base: base, Kube: lab.KubeReal, Nodes: -1, Out: io.Discard})
	if err != nil {
		return err
	}
	defer l.Down(context.Background())
	kubectl := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, l.KubectlPath(), append([]string{"--kubeconfig=" + l.KubeconfigPath()}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return out, nil
	}
	ezrestore := func(args ...string) ([]byte, error) {
		out, err := exec.CommandContext(ctx, bin, append([]string{"--base", base}, args...)...).CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("ezrestore %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return out, nil
	}
	type item = map[string]any
	items := make([]item, n)
	for i := range items {
		items[i] = item{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": item{"name": fmt.Sprintf("cm-%05d", i), "namespace": "bench", "labels": item{"n": fmt.Sprint(i)}},
			"data":     item{"value": strings.Repeat("v", 200)}}
	}
	list, _ := json.Marshal(item{"apiVersion": "v1", "kind": "List", "items": items})
	if _, err := kubectl(nil, "create", "namespace", "bench"); err != nil {
		return err
	}
	if _, err := kubectl(list, "create", "-f", "-"); err != nil {
		return err
	}
	if _, err := ezrestore("backup", name); err != nil {
		return err
	}
	if _, err := kubectl(nil, "delete", "namespace", "bench", "--wait=true", "--timeout=300s"); err != nil {
		return err
	}
	start := time.Now()
	out, err := ezrestore("recover", name, "--snapshot", "latest", "--namespace", "bench", "--yes")
	took := time.Since(start)
	if err != nil {
		return err
	}
	got, err := kubectl(nil, "-n", "bench", "get", "configmaps", "--no-headers", "-o", "name")
	if err != nil {
		return err
	}
	back := strings.Count(string(got), "configmap/cm-")
	last := strings.TrimSpace(string(out))
	if i := strings.LastIndex(last, "\n"); i > 0 {
		last = strings.TrimSpace(last[:i]) // the line before "Run record:"
		if j := strings.LastIndex(last, "\n"); j >= 0 {
			last = last[j+1:]
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("recover --namespace: %d ConfigMaps (%d back through the API): %.2f s for the whole command (target < 10 s); %s; load %s\n",
		n, back, took.Seconds(), last, strings.Join(strings.Fields(string(load))[:3], " "))
	return nil
}
