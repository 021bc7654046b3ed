package s3test

import (
	"context"
	"os"
	"testing"
	"time"
)

// ForTest starts a server for t with one bucket and stops it when t ends.
// It skips t unless EZRESTORE_E2E=1 (`make test` sets it); the first run
// builds the server (minutes).
func ForTest(t testing.TB, bucket string) *Server {
	t.Helper()
	if os.Getenv("EZRESTORE_E2E") != "1" {
		t.Skip("set EZRESTORE_E2E=1 (make test does): runs a real S3 server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	s, err := Start(ctx, t.TempDir(), logWriter{t})
	if err != nil {
		t.Fatalf("S3 server: %v", err)
	}
	t.Cleanup(s.Stop)
	if bucket != "" {
		if err := s.CreateBucket(ctx, bucket); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	s := string(p)
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	w.t.Log(s)
	return len(p), nil
}
