// Package kit is a cluster's rebuild kit: what a bastion needs, beside a
// snapshot, to find and reach the cluster again when the bastion itself is
// lost. The kit is the kubeasz cluster dir's inventory files, config.yml,
// ssl/, kubectl.kubeconfig and recorded host keys (never an SSH private key,
// unless asked), as one tar stored encrypted beside each offsite snapshot
// (backup --to), and unpacked into a fresh <base>/clusters/<name>/ by
// `ezrestore clusters fetch`.
package kit

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ManifestName is the kit's first entry: what it holds and where from.
const ManifestName = "ezrestore-kit.json"

// MaxSize bounds a kit: a cluster dir without its backups is kilobytes;
// anything near this is not what the kit is for.
const MaxSize = 64 << 20

// Manifest says what a kit holds and where it came from.
type Manifest struct {
	Cluster string `json:"cluster"`
	// Dir and Base are the cluster dir and the base dir at backup time;
	// clusters fetch rewrites Dir in the inventory to where it unpacks.
	Dir  string    `json:"cluster_dir"`
	Base string    `json:"base"`
	Time time.Time `json:"time"`
	// Files are the kit's files, relative to the cluster dir.
	Files []string `json:"files"`
	// SSHKeyIncluded is true when private SSH keys were packed on request.
	SSHKeyIncluded bool `json:"ssh_private_key_included"`
	// LeftOut are files of the cluster dir the kit does not hold, and why
	// (SSH private keys, backups, run records, ...), for the operator.
	LeftOut []string `json:"left_out,omitempty"`
}

// Source is a cluster dir to pack.
type Source struct {
	Dir, Cluster, Base string
	// IncludeSSHKey packs the SSH private keys too (--include-ssh-key).
	IncludeSSHKey bool
}

// topFiles are the cluster dir's own files the kit takes: kubeasz's
// inventory, its config and the kubeconfig it writes.
var topFiles = map[string]bool{"hosts": true, "config.yml": true, "kubectl.kubeconfig": true}

// topDirs are the dirs the kit takes: certificates, recorded host keys
// (filtered, below) and inventory variables.
var topDirs = map[string]bool{"ssl": true, "ssh": true, "group_vars": true, "host_vars": true}

// isInventoryFile is an inventory beside hosts (hosts.ini, hosts.yaml, ...).
func isInventoryFile(name string) bool {
	for _, ext := range []string{".ini", ".yml", ".yaml"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// sshPrivateKey tells an SSH private key by its armour: OpenSSH's own, or
// the PEM kinds ssh-keygen wrote before it (only under ssh/, where TLS keys
// do not live: ssl/'s keys are the kit's purpose).
func sshPrivateKey(rel string, data []byte) bool {
	if bytes.Contains(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		return true
	}
	if strings.HasPrefix(rel, "ssh/") {
		return bytes.Contains(data, []byte("PRIVATE KEY-----"))
	}
	return false
}

// Build packs the cluster dir into a tar: the manifest first, then the
// files in name order, each 0600 (dirs 0700) whatever its mode on disk.
func Build(src Source, now time.Time) ([]byte, *Manifest, error) {
	m := &Manifest{Cluster: src.Cluster, Dir: src.Dir, Base: src.Base, Time: now.UTC(), SSHKeyIncluded: src.IncludeSSHKey}
	type file struct {
		rel  string
		data []byte
	}
	var files []file
	total := 0
	err := filepath.WalkDir(src.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src.Dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		top, _, nested := strings.Cut(rel, "/")
		if d.IsDir() {
			if !nested && !topDirs[top] {
				m.LeftOut = append(m.LeftOut, rel+"/ (not part of the kit)")
				return filepath.SkipDir
			}
			return nil
		}
		if !nested && !topFiles[top] && !isInventoryFile(top) {
			m.LeftOut = append(m.LeftOut, rel+" (not part of the kit)")
			return nil
		}
		if !d.Type().IsRegular() {
			m.LeftOut = append(m.LeftOut, rel+" (not a regular file)")
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("rebuild kit: %w", err)
		}
		if sshPrivateKey(rel, data) && !src.IncludeSSHKey {
			m.LeftOut = append(m.LeftOut, rel+" (an SSH private key: --include-ssh-key packs it)")
			return nil
		}
		if total += len(data); total > MaxSize {
			return fmt.Errorf("rebuild kit of %s: over %d MiB at %s; the kit is the inventory, config and certificates, not bulk data", src.Dir, MaxSize>>20, rel)
		}
		files = append(files, file{rel, data})
		m.Files = append(m.Files, rel)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !contains(m.Files, "hosts") && !hasInventory(m.Files) {
		return nil, nil, fmt.Errorf("rebuild kit: no inventory (hosts) in %s", src.Dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	sort.Strings(m.Files)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	add := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: m.Time, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(ManifestName, append(mj, '\n')); err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		if err := add(f.rel, f.data); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), m, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasInventory(files []string) bool {
	for _, f := range files {
		if !strings.Contains(f, "/") && isInventoryFile(f) && f != "config.yml" {
			return true
		}
	}
	return false
}

// Rewrite is one inventory file whose paths were moved to the new dir.
type Rewrite struct {
	File  string `json:"file"`
	Count int    `json:"count"`
}

// Unpacked is a kit written into a cluster dir.
type Unpacked struct {
	Dir      string    `json:"cluster_dir"`
	Manifest *Manifest `json:"manifest"`
	// Rewrites are the inventory files where the old cluster dir (and
	// kubeasz's base_dir) were replaced by the new ones.
	Rewrites []Rewrite `json:"rewrites,omitempty"`
	// Missing are files in the cluster dir that the inventory names but
	// the kit does not hold (an SSH private key left out): the operator
	// puts them there before connecting.
	Missing []string `json:"missing,omitempty"`
}

// Unpack writes the kit read from r into dest, which must not exist: it is
// filled beside it under a temporary name and renamed into place, so a
// failure leaves nothing half-written. Only regular files and dirs are
// taken, each inside dest (0600 and 0700). In the inventory files (hosts,
// *.ini, *.yml, *.yaml, group_vars/, host_vars/), the cluster dir the kit
// came from becomes dest and kubeasz's base_dir the new base.
func Unpack(r io.Reader, dest, base string) (*Unpacked, error) {
	if _, err := os.Lstat(dest); err == nil {
		return nil, fmt.Errorf("%s exists: a kit is never unpacked over a cluster dir; move it aside or pick another --name", dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dest)+".kit-")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	u := &Unpacked{Dir: dest}
	tr := tar.NewReader(io.LimitReader(r, MaxSize+1<<20))
	contents := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("rebuild kit: %w", err)
		}
		name := path.Clean(hdr.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("rebuild kit: entry %q points outside the cluster dir", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("rebuild kit: entry %q is not a regular file", hdr.Name)
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxSize+1))
		if err != nil {
			return nil, fmt.Errorf("rebuild kit: %s: %w", name, err)
		}
		if name == ManifestName {
			u.Manifest = &Manifest{}
			if err := json.Unmarshal(data, u.Manifest); err != nil {
				return nil, fmt.Errorf("rebuild kit: %s: %w", ManifestName, err)
			}
			continue
		}
		contents[name] = data
	}
	if u.Manifest == nil {
		return nil, fmt.Errorf("rebuild kit: no %s: not a kit ezrestore wrote", ManifestName)
	}
	names := make([]string, 0, len(contents))
	for n := range contents {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		data := contents[name]
		if isInventoryPath(name) {
			var n int
			data, n = relocate(data, u.Manifest, dest, base)
			if n > 0 {
				u.Rewrites = append(u.Rewrites, Rewrite{File: name, Count: n})
			}
			contents[name] = data
		}
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return nil, err
		}
	}
	u.Missing = missing(contents, dest)
	if err := os.Chmod(tmp, 0o700); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return nil, fmt.Errorf("putting the kit in place at %s: %w", dest, err)
	}
	done = true
	return u, nil
}

// isInventoryPath is a file that names paths of the bastion: the inventory
// and its variables.
func isInventoryPath(name string) bool {
	top, _, nested := strings.Cut(name, "/")
	if nested {
		return top == "group_vars" || top == "host_vars"
	}
	return name == "hosts" || isInventoryFile(name) && name != "config.yml"
}

// relocate replaces the old cluster dir by dest, and kubeasz's
// base_dir="<old base>" by the new base, and counts the replacements.
func relocate(data []byte, m *Manifest, dest, base string) ([]byte, int) {
	n := 0
	if m.Dir != "" && m.Dir != dest {
		n += bytes.Count(data, []byte(m.Dir))
		data = bytes.ReplaceAll(data, []byte(m.Dir), []byte(dest))
	}
	if m.Base != "" && base != "" && m.Base != base {
		for _, q := range []string{`"`, `'`, ``} {
			old := []byte("base_dir=" + q + m.Base + q)
			if c := bytes.Count(data, old); c > 0 {
				n += c
				data = bytes.ReplaceAll(data, old, []byte("base_dir="+q+base+q))
			}
		}
	}
	return data, n
}

// pathChars finds paths under a cluster dir in an inventory's text.
var pathChars = regexp.MustCompile(`^[A-Za-z0-9._/-]+`)

// missing lists the files under dest that the (relocated) inventory files
// name and the kit does not hold.
func missing(contents map[string][]byte, dest string) []string {
	seen := map[string]bool{}
	var out []string
	for name, data := range contents {
		if !isInventoryPath(name) {
			continue
		}
		rest := data
		for {
			i := bytes.Index(rest, []byte(dest+"/"))
			if i < 0 {
				break
			}
			rest = rest[i+len(dest)+1:]
			rel := string(pathChars.Find(rest))
			if rel == "" || seen[rel] {
				continue
			}
			seen[rel] = true
			if _, ok := contents[rel]; !ok {
				out = append(out, filepath.Join(dest, rel))
			}
		}
	}
	sort.Strings(out)
	return out
}
