package offsite

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"testing"

	"filippo.io/age"
)

func writeAgeIdentity(t *testing.T, path string) (recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String()
}

// corruptingProxy forwards to target on a loopback port and flips one bit
// of the body of every GET answer bigger than 1 KiB: a store that serves
// other bytes than it was sent.
func corruptingProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodGet && r.ContentLength > 1024 {
			r.Body = &flipReader{r: r.Body, at: 1000}
		}
		return nil
	}
	srv := httptest.NewServer(rp) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL
}

type flipReader struct {
	r   io.ReadCloser
	off int64
	at  int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 1
	}
	f.off += int64(n)
	return n, err
}

func (f *flipReader) Close() error { return f.r.Close() }

// deadEndpoint is a loopback URL nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
