package offsite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Open streams key's stored bytes. The caller closes the reader.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return nil, Object{}, s.wrap("get", key, err)
	}
	return out.Body, Object{Key: key, Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}, nil
}

// Peek returns up to n leading bytes of key (a ranged GET): enough to check
// an age header against an identity before downloading the whole object.
func (s *Store) Peek(ctx context.Context, key string, n int) ([]byte, error) {
	rng := fmt.Sprintf("bytes=0-%d", n-1)
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key, Range: &rng})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, int64(n)))
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return data, nil
}

// Verify reads key back and checks that it holds size bytes with the given
// hex sha256, returning ErrDamaged (wrapped) when not.
func (s *Store) Verify(ctx context.Context, key string, size int64, sha string) (Object, error) {
	body, obj, err := s.Open(ctx, key)
	if err != nil {
		return Object{}, err
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return Object{}, s.wrap("verify", key, fmt.Errorf("reading the stored object back: %w", err))
	}
	obj.Size, obj.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	if n != size || obj.SHA256 != sha {
		return Object{}, s.wrap("verify", key, fmt.Errorf("%w: sent %d bytes with sha256 %s, the store returns %d bytes with sha256 %s",
			ErrDamaged, size, sha, n, obj.SHA256))
	}
	return obj, nil
}

// GetOptions tune Get.
type GetOptions struct {
	// Dir is where the private temp dir is made (default os.TempDir()).
	Dir string
	// Want, when Size or SHA256 is set, is what the stored bytes must be
	// (for instance from the sidecar); anything else is ErrDamaged.
	Want Object
	// Decode, when set, wraps the stored stream before it is written (for
	// instance age decryption); its read errors fail the Get.
	Decode func(io.Reader) (io.Reader, error)
	// Name is the file name in the temp dir (default: the key's base name,
	// without ".age" when Decode is set).
	Name string
}

// Download is a fetched object in a private temp dir.
type Download struct {
	Path string
	// Stored describes the bytes the store sent (size, sha256).
	Stored Object
	// Size is the size of the file written (after Decode).
	Size int64
	dir  string
}

// Remove deletes the temp dir and the file in it.
func (d *Download) Remove() error {
	if d == nil || d.dir == "" {
		return nil
	}
	return os.RemoveAll(d.dir)
}

// Get downloads key into a new temp dir (0700) as a 0600 file, streaming:
// the stored bytes are hashed as they arrive, decoded if asked, written, and
// checked against o.Want. On any error nothing is left behind.
func (s *Store) Get(ctx context.Context, key string, o GetOptions) (_ *Download, err error) {
	body, obj, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	dir, err := os.MkdirTemp(o.Dir, "ezrestore-s3-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = path.Base(key)
		if o.Decode != nil {
			name = strings.TrimSuffix(name, ".age")
		}
	}
	p := filepath.Join(dir, filepath.Base(name))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(body, h)}
	var src io.Reader = counted
	if o.Decode != nil {
		if src, err = o.Decode(counted); err != nil {
			return nil, fmt.Errorf("%s: %w", s.URL(key), err)
		}
	}
	n, err := io.Copy(f, src)
	if err != nil {
		if counted.err != nil {
			return nil, s.wrap("get", key, counted.err)
		}
		return nil, fmt.Errorf("%s: %w", s.URL(key), err)
	}
	// Drain what a decoder did not need, so the hash covers every stored byte.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return nil, s.wrap("get", key, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	obj.Size, obj.SHA256 = counted.n, hex.EncodeToString(h.Sum(nil))
	if (o.Want.Size > 0 && o.Want.Size != obj.Size) || (o.Want.SHA256 != "" && o.Want.SHA256 != obj.SHA256) {
		return nil, s.wrap("get", key, fmt.Errorf("%w: expected %d bytes with sha256 %s, the store returned %d bytes with sha256 %s",
			ErrDamaged, o.Want.Size, o.Want.SHA256, obj.Size, obj.SHA256))
	}
	return &Download{Path: p, Stored: obj, Size: n, dir: dir}, nil
}

type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// GetBytes reads a small object (a sidecar) whole, refusing more than limit bytes.
func (s *Store) GetBytes(ctx context.Context, key string, limit int64) ([]byte, error) {
	body, _, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", s.URL(key), limit)
	}
	return data, nil
}
