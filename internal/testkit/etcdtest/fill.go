package etcdtest

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
)

// Filler writes Kubernetes-like keys (pods and configmaps in 200 namespaces)
// with random values of a few KB, for benchmarks that need big snapshots.
type Filler struct {
	Server *Server
	// KV, when set, makes key number n and its value (each writer has its
	// own rng, seeded by where its batch starts, so the data is the same
	// every time); nil: the keys and values described above.
	KV func(rng *rand.Rand, n int) (string, []byte)
	// Batch is how many keys are written between two size checks (2000).
	Batch int
	n     int
}

func (f *Filler) kv(rng *rand.Rand, n int) (string, []byte) {
	if f.KV != nil {
		return f.KV(rng, n)
	}
	key := fmt.Sprintf("/registry/pods/ns-%03d/pod-%07d", n%200, n)
	if n%5 == 0 {
		key = fmt.Sprintf("/registry/configmaps/ns-%03d/cm-%07d", n%200, n)
	}
	return key, Value(rng)
}

// Value is a random value of 1.5 to 4.5 KB.
func Value(rng *rand.Rand) []byte {
	v := make([]byte, 1500+rng.Intn(3000))
	rng.Read(v)
	return v
}

// Written is how many keys Fill has written.
func (f *Filler) Written() int { return f.n }

// Fill writes new keys with 8 writers until etcd's database reaches size bytes.
func (f *Filler) Fill(ctx context.Context, size int64) error {
	for {
		got, err := f.Server.DBSize(ctx)
		if err != nil {
			return err
		}
		if got >= size {
			return nil
		}
		batch := f.Batch
		if batch <= 0 {
			batch = 2000
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		start := f.n
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(start + g)))
				for i := g; i < batch; i += 8 {
					key, value := f.kv(rng, start+i)
					if _, err := f.Server.Put(ctx, key, value); err != nil {
						errs <- err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		f.n += batch
	}
}
