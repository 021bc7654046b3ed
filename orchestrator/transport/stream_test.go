package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// The host side of UploadGzip, run by a local sh with the real gzip and
// sha256sum: the file lands with its mode and sum; a wrong sum or a cut
// stream leaves neither the file nor its .part.
func TestGunzipCommand(t *testing.T) {
	for _, tool := range []string{"gzip", "sha256sum", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	data := bytes.Repeat([]byte(`{"kind":"Pod","metadata":{"name":"web-7d4b9c"}}`), 5000)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, GzipLevel)
	zw.Write(data)
	zw.Close()

	dir := t.TempDir()
	remote := filepath.Join(dir, "it's here.db")
	run := func(stdin []byte, want string) (string, error) {
		cmd := exec.Command("sh", "-c", gunzipCommand(remote, 0o640, want))
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(gz.Bytes(), want)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.TrimSpace(out) != "sha256 "+want {
		t.Errorf("output %q", out)
	}
	got, err := os.ReadFile(remote)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file differs from the source (%v)", err)
	}
	if st, _ := os.Stat(remote); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	os.Remove(remote)

	if out, err := run(gz.Bytes(), strings.Repeat("0", 64)); err == nil || !strings.Contains(out, "the bastion's is 0000") {
		t.Errorf("a wrong sum was accepted: %v %s", err, out)
	}
	if out, err := run(gz.Bytes()[:gz.Len()/2], want); err == nil {
		t.Errorf("a cut stream was accepted: %s", out)
	}
	for _, p := range []string{remote, remote + ".part"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind after a failure", p)
		}
	}
}
