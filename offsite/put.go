package offsite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// PutFile uploads the file at path as key (see Put).
func (s *Store) PutFile(ctx context.Context, key, path string) (Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return Object{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Object{}, err
	}
	return s.Put(ctx, key, f, fi.Size())
}

// Put streams r into key and proves the upload by reading the stored object
// back and comparing its size and sha256 with what was sent; a stored
// object that differs is deleted and ErrDamaged returned. sizeHint (0 when
// unknown) lets parts grow so that very big streams fit S3's 10000 parts.
// Objects up to one part go in one PUT, bigger ones by multipart upload with
// Concurrency parts in flight; memory stays about PartSize × (Concurrency+1)
// whatever the size. Nothing is visible under key until the upload is
// complete, and a failed multipart upload is aborted.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, sizeHint int64) (Object, error) {
	partSize := s.partSizeFor(sizeHint)
	h := sha256.New()
	buf := make([]byte, partSize)
	n, err := io.ReadFull(r, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Object{}, fmt.Errorf("s3 put %s: reading the source: %w", s.URL(key), err)
	}
	var size int64
	if err != nil { // all of it fits one part
		h.Write(buf[:n])
		size = int64(n)
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return Object{}, s.wrap("put", key, err)
		}
	} else {
		size, err = s.multipart(ctx, key, r, buf, partSize, h)
		if err != nil {
			return Object{}, err
		}
	}
	sent := Object{Key: key, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}
	buf = nil
	got, err := s.Verify(ctx, key, sent.Size, sent.SHA256)
	if err != nil {
		if errors.Is(err, ErrDamaged) {
			if derr := s.Delete(context.WithoutCancel(ctx), key); derr != nil {
				return Object{}, fmt.Errorf("%w (and deleting it failed: %v)", err, derr)
			}
			return Object{}, fmt.Errorf("%w; the object was deleted, run the upload again", err)
		}
		return Object{}, err
	}
	return got, nil
}

// multipart uploads first (a full part already read) and the rest of r.
func (s *Store) multipart(ctx context.Context, key string, r io.Reader, first []byte, partSize int64, h hash.Hash) (int64, error) {
	cr, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return 0, s.wrap("put", key, err)
	}
	uploadID := cr.UploadId
	abort := func(cause error) error {
		// Without the abort the store keeps the parts (and bills them).
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30e9)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.Bucket, Key: &key, UploadId: uploadID}); aerr != nil {
			return fmt.Errorf("%w (aborting the multipart upload %s also failed: %v)", cause, aws.ToString(uploadID), s.wrap("abort", key, aerr))
		}
		return cause
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Concurrency+1 buffers: one being filled, the others in flight. A
	// buffer comes back to the pool when its part is sent.
	pool := make(chan []byte, s.conc+1)
	for i := 0; i < s.conc; i++ {
		pool <- nil // allocated on first use
	}
	var (
		mu       sync.Mutex
		parts    []types.CompletedPart
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return firstErr != nil }
	send := func(num int32, part []byte) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { pool <- part[:cap(part)] }()
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &s.Bucket, Key: &key, UploadId: uploadID, PartNumber: aws.Int32(num),
				Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
			})
			if err != nil {
				fail(s.wrap("put", key, fmt.Errorf("part %d: %w", num, err)))
				return
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
			mu.Unlock()
		}()
	}

	var size int64
	buf, n, last := first, len(first), false
	for num := int32(1); ; num++ {
		if num > maxParts {
			fail(fmt.Errorf("s3 put %s: more than %d parts of %d MiB: pass the stream's size", s.URL(key), maxParts, partSize>>20))
			break
		}
		h.Write(buf[:n])
		size += int64(n)
		send(num, buf[:n])
		if last || failed() {
			break
		}
		if buf = <-pool; buf == nil {
			buf = make([]byte, partSize)
		}
		var err error
		n, err = io.ReadFull(r, buf)
		if err == io.EOF {
			break
		}
		if err == io.ErrUnexpectedEOF {
			last = true
		} else if err != nil {
			fail(fmt.Errorf("s3 put %s: reading the source: %w", s.URL(key), err))
			break
		}
	}
	wg.Wait()
	if firstErr != nil {
		return 0, abort(firstErr)
	}
	sort.Slice(parts, func(i, j int) bool { return *parts[i].PartNumber < *parts[j].PartNumber })
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.Bucket, Key: &key, UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return 0, abort(s.wrap("put", key, fmt.Errorf("completing the multipart upload: %w", err)))
	}
	return size, nil
}

// partSizeFor grows the part size until a stream of about size bytes fits
// in S3's 10000 parts, with room for a size hint that is a little short.
func (s *Store) partSizeFor(size int64) int64 {
	p := s.partSize
	for size > 0 && size/p >= maxParts-500 {
		p *= 2
	}
	return p
}
