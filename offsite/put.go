package offsite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// unsignedPayload leaves the body out of the SigV4 signature. Signing it
// costs a sha256 pass on each side over plain http (the SDK only skips it
// over https), and the read-back in Put proves the bytes anyway.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

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
// back and comparing its size and CRC-32C with what was sent; a stored
// object that differs is deleted and ErrDamaged returned. The returned
// Object carries the sha256 of the bytes sent, for the sidecar: Get checks
// downloads against it. sizeHint (0 when
// unknown) lets parts grow so that very big streams fit S3's 10000 parts.
// Objects up to one part go in one PUT, bigger ones by multipart upload with
// Concurrency parts in flight; memory stays about PartSize × (Concurrency+1)
// whatever the size. Nothing is visible under key until the upload is
// complete, and a failed multipart upload is aborted.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, sizeHint int64) (Object, error) {
	partSize := s.partSizeFor(sizeHint)
	// sha256 is what the caller records; CRC-32C (hardware, ~10x cheaper
	// than sha256 here) is what the read-back compares, so proving the
	// upload costs one more read, not one more sha256 pass.
	sh, crc := sha256.New(), crc32.New(castagnoli)
	h := io.MultiWriter(sh, crc)
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
		}, unsignedPayload)
		if err != nil {
			return Object{}, s.wrap("put", key, err)
		}
	} else {
		size, err = s.multipart(ctx, key, r, buf, partSize, h)
		if err != nil {
			return Object{}, err
		}
	}
	sent := Object{Key: key, Size: size, SHA256: hex.EncodeToString(sh.Sum(nil))}
	buf = nil
	got, err := s.readBack(ctx, sent, crc.Sum32())
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
func (s *Store) multipart(ctx context.Context, key string, r io.Reader, first []byte, partSize int64, h io.Writer) (int64, error) {
	cr, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return 0, s.wrap("put", key, err)
	}
	uploadID := cr.UploadId
	abort := func(cause error) error {
		// Without the abort the store keeps the parts (and bills them). A
		// part the store was still receiving when the upload was aborted
		// may bring the upload back (S3 says to abort again until it is
		// gone): it is checked and aborted up to three times.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30e9)
		defer cancel()
		for try := 1; ; try++ {
			if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.Bucket, Key: &key, UploadId: uploadID}); aerr != nil {
				return fmt.Errorf("%w (aborting the multipart upload %s also failed: %v)", cause, aws.ToString(uploadID), s.wrap("abort", key, aerr))
			}
			if !s.uploadOpen(actx, key, aws.ToString(uploadID)) {
				return cause
			}
			if try == 3 {
				return fmt.Errorf("%w (the multipart upload %s is still listed after 3 aborts)", cause, aws.ToString(uploadID))
			}
			time.Sleep(250 * time.Millisecond)
		}
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
			}, unsignedPayload)
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

// uploadOpen says whether the store still lists the multipart upload id of
// key (false when it cannot tell: the abort itself was accepted).
func (s *Store) uploadOpen(ctx context.Context, key, id string) bool {
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.Bucket, Prefix: &key})
	if err != nil {
		return false
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.UploadId) == id {
			return true
		}
	}
	return false
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

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readBack reads key back and compares its size and CRC-32C with what was sent.
func (s *Store) readBack(ctx context.Context, sent Object, crc uint32) (Object, error) {
	body, obj, err := s.Open(ctx, sent.Key)
	if err != nil {
		return Object{}, err
	}
	defer body.Close()
	c := crc32.New(castagnoli)
	n, err := io.Copy(c, body)
	if err != nil {
		return Object{}, s.wrap("verify", sent.Key, fmt.Errorf("reading the stored object back: %w", err))
	}
	if n != sent.Size || c.Sum32() != crc {
		return Object{}, s.wrap("verify", sent.Key, fmt.Errorf("%w: sent %d bytes with CRC-32C %08x, the store returns %d bytes with CRC-32C %08x",
			ErrDamaged, sent.Size, crc, n, c.Sum32()))
	}
	obj.Size, obj.SHA256 = n, sent.SHA256
	return obj, nil
}
