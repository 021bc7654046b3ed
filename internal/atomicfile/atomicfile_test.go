package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// onlyFile fails unless dir holds exactly the file name: no temporary file left behind.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Fatalf("dir holds %q, want only %q", names, name)
	}
}

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "record.json")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{
		{"first\n", 0o600},
		{"second, longer than the first\n", 0o640},
		{"", 0o600},
	} {
		if err := Write(p, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.data {
			t.Errorf("content %q, want %q", got, tc.data)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.perm {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
		}
		onlyFile(t, dir, "record.json")
	}
}

func TestWriteIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	p := filepath.Join(t.TempDir(), "f")
	if err := Write(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
}

func TestWriteRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := Write("rel.txt", []byte("here"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "rel.txt"))
	if err != nil || string(got) != "here" {
		t.Fatalf("read back %q, %v", got, err)
	}
}

func TestWriteMissingDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "absent", "f")
	err := Write(p, []byte("x"), 0o600)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk went away")
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = 'y'
	}
	r.n -= n
	return n, nil
}

func TestCopyKeepsOldFileWhenReaderFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "snapshot.db")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Copy(p, &failingReader{n: 1 << 20}, 0o600)
	if err == nil || !strings.Contains(err.Error(), "disk went away") || !strings.Contains(err.Error(), p) {
		t.Fatalf("got %v, want the reader's error naming %s", err, p)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "old" {
		t.Fatalf("after a failed copy: %q, %v; want the old content", got, err)
	}
	onlyFile(t, dir, "snapshot.db")
}

func TestCopyStreams(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "big")
	const size = 3<<20 + 7
	r := io.LimitReader(&failingReader{n: size + 1}, size)
	if err := Copy(p, r, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size || fi.Mode().Perm() != 0o600 {
		t.Errorf("size %d mode %v, want %d 0600", fi.Size(), fi.Mode().Perm(), size)
	}
	onlyFile(t, dir, "big")
}
