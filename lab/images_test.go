package lab

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An image tar is an OCI image layout whose every blob is named by its
// digest, whose index names the image as containerd's import reads it, and
// whose one layer holds the files with their parents.
func TestWriteOCIImage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "tool")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := imageSpec{Name: "registry.k8s.io/etcd:3.6.17-0", Env: []string{"PATH=/usr/local/bin"},
		Files: []imageFile{
			{Path: "/usr/local/bin/etcd", Source: src, Mode: 0o755},
			{Path: "/bin/sh", Link: "busybox"},
			{Path: "/etc/passwd", Data: []byte("root:x:0:0::/:/bin/sh\n"), Mode: 0o644},
			{Path: "/var/lib/etcd", Mode: 0o700 | int64(os.ModeDir)},
		}}
	out := filepath.Join(dir, imageFileName(spec.Name))
	if err := writeOCIImage(spec, out); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = data
	}
	for name, data := range files {
		if d, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && d != "" {
			sum := sha256.Sum256(data)
			if hex.EncodeToString(sum[:]) != d {
				t.Errorf("blob %s has digest %x", name, sum)
			}
		}
	}
	var index struct {
		Manifests []ociDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	if got := index.Manifests[0].Annotations["io.containerd.image.name"]; got != spec.Name {
		t.Fatalf("image name %q", got)
	}
	var manifest struct {
		Config ociDescriptor   `json:"config"`
		Layers []ociDescriptor `json:"layers"`
	}
	if err := json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(index.Manifests[0].Digest, "sha256:")], &manifest); err != nil || len(manifest.Layers) != 1 {
		t.Fatalf("manifest: %v", err)
	}
	layer := files["blobs/sha256/"+strings.TrimPrefix(manifest.Layers[0].Digest, "sha256:")]
	var names []string
	lr := tar.NewReader(strings.NewReader(string(layer)))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"bin/ bin/sh", "etc/ etc/passwd", "usr/ usr/local/ usr/local/bin/ usr/local/bin/etcd", "var/lib/etcd/"} {
		if !strings.Contains(got, want) {
			t.Errorf("layer lacks %q (parents first): %s", want, got)
		}
	}
	var config struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(manifest.Config.Digest, "sha256:")], &config); err != nil ||
		len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != manifest.Layers[0].Digest {
		t.Fatalf("config diff_ids %v, want the uncompressed layer's digest %s (%v)", config.RootFS.DiffIDs, manifest.Layers[0].Digest, err)
	}
}
