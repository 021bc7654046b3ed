package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Many goroutines write at once (run with -race); nothing is lost, and
// Bytes is a copy the writers cannot change afterwards.
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var out strings.Builder
	w := &Writer{W: &out}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.Write([]byte("x"))
			w.Write([]byte("y"))
			_ = b.String()
		}()
	}
	wg.Wait()
	got := b.Bytes()
	b.Write([]byte("z"))
	if string(got) != strings.Repeat("x", 50) || out.String() != strings.Repeat("y", 50) {
		t.Fatalf("buffer %q, writer %q", got, out.String())
	}
}
