package lab

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// The lab's container images. There is no registry: each image is an OCI
// image layout in a tar (oci-layout, index.json, blobs/sha256/: a manifest, a
// config and one uncompressed layer) that a host's containerd imports with
// `ctr -n k8s.io images import`. They are made from what the lab already
// caches: the base's static busybox and the etcd build.
const (
	// PauseImage is containerd's sandbox image: a busybox shell that sleeps
	// until stopped (kubeadm's is registry.k8s.io/pause:3.10.1).
	PauseImage = "registry.k8s.io/pause:3.10.1"
	// BusyboxImage is for ordinary pods: `kubectl run --image=busybox:lab`.
	BusyboxImage = "docker.io/library/busybox:lab"
	// kubeadm names its etcd image registry.k8s.io/etcd:<version>-0.
	etcdImageRepo = "registry.k8s.io/etcd"
)

// EtcdImage is the etcd image of release, as kubeadm names it.
func EtcdImage(release string) string { return etcdImageRepo + ":" + release + "-0" }

// busyboxApplets are linked to /bin/busybox in every image: enough for a
// shell, the pause loop and poking around with `ctr exec` or `kubectl exec`.
var busyboxApplets = []string{"sh", "sleep", "cat", "ls", "echo", "ps", "id", "env", "date", "hostname", "mkdir", "rm", "cp", "mv", "wget", "head", "tail", "grep", "true", "false"}

// imageFile is one entry of an image's root filesystem.
type imageFile struct {
	Path   string // absolute, in the image
	Source string // a file on this machine to copy, or
	Data   []byte // the content, or
	Link   string // a symlink target
	Mode   int64
}

// imageSpec is one image to write.
type imageSpec struct {
	Name       string
	Files      []imageFile
	Entrypoint []string
	Cmd        []string
	Env        []string
}

// busyboxFiles is a root with /bin/busybox (the base's static one) and its applets.
func busyboxFiles(baseRoot string) []imageFile {
	files := []imageFile{
		{Path: "/bin/busybox", Source: filepath.Join(baseRoot, "bin/busybox"), Mode: 0o755},
		{Path: "/tmp", Mode: 0o1777 | int64(os.ModeDir)},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\n"), Mode: 0o644},
	}
	for _, a := range busyboxApplets {
		files = append(files, imageFile{Path: "/bin/" + a, Link: "busybox"})
	}
	return files
}

// pauseLoop sleeps until SIGTERM: PID 1 of a container gets no default
// signal handling, so the trap is what lets it stop.
var pauseLoop = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}

// labImages are the images of a kubeadm-shaped lab: pause, busybox and the
// etcd of the lab's release (etcdBin is its cached build).
func labImages(baseRoot, etcdBin, etcdRelease string) []imageSpec {
	bb := busyboxFiles(baseRoot)
	etcd := append([]imageFile{}, bb...)
	for _, n := range []string{"etcd", "etcdctl", "etcdutl"} {
		etcd = append(etcd, imageFile{Path: "/usr/local/bin/" + n, Source: filepath.Join(etcdBin, n), Mode: 0o755})
	}
	etcd = append(etcd, imageFile{Path: "/var/lib/etcd", Mode: 0o700 | int64(os.ModeDir)})
	path := "PATH=/usr/local/bin:/usr/bin:/bin"
	return []imageSpec{
		{Name: PauseImage, Files: bb, Entrypoint: pauseLoop, Env: []string{path}},
		{Name: BusyboxImage, Files: bb, Cmd: []string{"sh"}, Env: []string{path}},
		{Name: EtcdImage(etcdRelease), Files: etcd, Env: []string{path}},
	}
}

// imageFileName is the tar an image is cached in.
func imageFileName(name string) string {
	r := strings.NewReplacer("/", "_", ":", "_")
	return r.Replace(name) + ".tar"
}

// ImagesDir is where the lab's image tars are cached: they depend on the
// base (busybox) and the etcd build, both named by the dir.
func ImagesDir(etcdRelease string) string {
	return filepath.Join(CacheDir, "lab", "images"+imagesRecipe+"-"+BaseHash()+"-etcd"+etcdRelease)
}

// imagesRecipe is bumped whenever labImages or the image format changes.
const imagesRecipe = "2"

// EnsureImages writes the lab's image tars unless cached, and returns their dir.
func EnsureImages(ctx context.Context, baseRoot, etcdBin, etcdRelease string, out io.Writer) (string, error) {
	dir := ImagesDir(etcdRelease)
	marker := filepath.Join(dir, ".ezrestore-images")
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	_ = os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	start := time.Now()
	var names []string
	for _, spec := range labImages(baseRoot, etcdBin, etcdRelease) {
		if err := writeOCIImage(spec, filepath.Join(tmp, imageFileName(spec.Name))); err != nil {
			return "", fmt.Errorf("image %s: %w", spec.Name, err)
		}
		names = append(names, spec.Name)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".ezrestore-images"), []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	logf(out, "images: wrote %s in %s", strings.Join(names, ", "), time.Since(start).Round(100*time.Millisecond))
	return dir, nil
}

// layerTar writes the image's root filesystem as one tar, parents first.
func layerTar(w io.Writer, files []imageFile) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{"/": true}
	var addDir func(d string, mode int64) error
	addDir = func(d string, mode int64) error {
		if dirs[d] {
			return nil
		}
		if err := addDir(filepath.Dir(d), 0o755); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: mode, ModTime: epoch})
	}
	sorted := append([]imageFile{}, files...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		name := strings.TrimPrefix(f.Path, "/")
		if f.Mode&int64(os.ModeDir) != 0 {
			if err := addDir(filepath.Dir(f.Path), 0o755); err != nil {
				return err
			}
			dirs[f.Path] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: f.Mode & 0o7777, ModTime: epoch}); err != nil {
				return err
			}
			continue
		}
		if err := addDir(filepath.Dir(f.Path), 0o755); err != nil {
			return err
		}
		switch {
		case f.Link != "":
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: f.Link, Mode: 0o777, ModTime: epoch}); err != nil {
				return err
			}
		case f.Source != "":
			src, err := os.Open(f.Source)
			if err != nil {
				return err
			}
			st, err := src.Stat()
			if err == nil {
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size(), Mode: f.Mode, ModTime: epoch})
			}
			if err == nil {
				_, err = io.Copy(tw, src)
			}
			src.Close()
			if err != nil {
				return err
			}
		default:
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(f.Data)), Mode: f.Mode, ModTime: epoch}); err != nil {
				return err
			}
			if _, err := tw.Write(f.Data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// writeOCIImage writes spec as an OCI image layout tar at path.
func writeOCIImage(spec imageSpec, path string) error {
	// The layer goes to a temp file first: its digest heads the blob's name.
	layerFile, err := os.CreateTemp(filepath.Dir(path), ".layer-")
	if err != nil {
		return err
	}
	defer os.Remove(layerFile.Name())
	defer layerFile.Close()
	h := sha256.New()
	if err := layerTar(io.MultiWriter(layerFile, h), spec.Files); err != nil {
		return err
	}
	layerSize, err := layerFile.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	layerDigest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": spec.Entrypoint, "Cmd": spec.Cmd, "Env": spec.Env, "WorkingDir": "/"},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
		"history":      []map[string]any{{"created_by": "ezrestore lab (lab/images.go)"}},
	})
	if err != nil {
		return err
	}
	configDesc := blobDesc("application/vnd.oci.image.config.v1+json", config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []ociDescriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: layerDigest, Size: layerSize}},
	})
	if err != nil {
		return err
	}
	manifestDesc := blobDesc("application/vnd.oci.image.manifest.v1+json", manifest)
	_, tag, _ := strings.Cut(spec.Name[strings.LastIndexByte(spec.Name, '/')+1:], ":")
	manifestDesc.Annotations = map[string]string{
		// containerd names the imported image by its full name.
		"io.containerd.image.name":          spec.Name,
		"org.opencontainers.image.ref.name": tag,
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []ociDescriptor{manifestDesc}})
	if err != nil {
		return err
	}

	tmp := path + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(out)
	epoch := time.Unix(0, 0)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	blob := func(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put("index.json", index); err != nil {
		return err
	}
	if err := put(blob(configDesc.Digest), config); err != nil {
		return err
	}
	if err := put(blob(manifestDesc.Digest), manifest); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blob(layerDigest), Size: layerSize, Mode: 0o644, ModTime: epoch}); err != nil {
		return err
	}
	if _, err := layerFile.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(tw, layerFile); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func blobDesc(mediaType string, data []byte) ociDescriptor {
	sum := sha256.Sum256(data)
	return ociDescriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
}
