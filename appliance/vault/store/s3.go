package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
)

// S3 keeps objects in a bucket of an S3-compatible server (AWS S3, MinIO,
// Ceph's radosgw, Backblaze B2, Wasabi, versitygw) through minio-go, whose
// requests carry no checksum headers such servers may reject. Conditional
// writes use If-None-Match: * and If-Match: ETag.
type S3 struct {
	core   minio.Core
	bucket string
	prefix string // prepended to every key; empty or ending in '/'
	lock   *ObjectLock
}

var _ Store = (*S3)(nil)

// name is the key as stored in the bucket.
func (s *S3) name(key string) string { return s.prefix + key }

// PutIfAbsent writes with If-None-Match: *.
func (s *S3) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	opts := s.putOptions()
	opts.SetMatchETagExcept("*")
	up, err := s.core.PutObject(ctx, s.bucket, s.name(key), exactly(r, size), size, "", "", opts)
	if code(err) == "PreconditionFailed" {
		return Info{}, fmt.Errorf("store: put %s: %w", key, ErrExists)
	}
	if err != nil {
		return Info{}, s.fail("put", key, err)
	}
	return Info{Key: key, Size: up.Size, ETag: unquote(up.ETag), Modified: up.LastModified}, nil
}

// PutIfMatch writes with If-Match: etag.
func (s *S3) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, etag string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	opts := s.putOptions()
	opts.SetMatchETag(etag)
	up, err := s.core.PutObject(ctx, s.bucket, s.name(key), exactly(r, size), size, "", "", opts)
	if c := code(err); c == "PreconditionFailed" {
		if _, serr := s.Stat(ctx, key); errors.Is(serr, ErrNotFound) {
			return Info{}, serr // servers differ in which answer a missing key gets
		}
		return Info{}, fmt.Errorf("store: put %s: %w", key, ErrConflict)
	}
	if err != nil {
		return Info{}, s.fail("put", key, err)
	}
	return Info{Key: key, Size: up.Size, ETag: unquote(up.ETag), Modified: up.LastModified}, nil
}

// putOptions are every write's options: the bucket's Object Lock
// retention, if one is set.
func (s *S3) putOptions() minio.PutObjectOptions {
	var opts minio.PutObjectOptions
	s.lock.apply(&opts)
	return opts
}

// Get reads a range with a ranged GET.
func (s *S3) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("store: get %s: negative offset %d", key, off)
	}
	if n == 0 { // no range header can ask for nothing
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case n > 0:
		opts.SetRange(off, off+n-1)
	case off > 0:
		opts.SetRange(off, 0)
	}
	rc, oi, _, err := s.core.GetObject(ctx, s.bucket, s.name(key), opts)
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	if n > 0 && oi.Size != n { // a server that ignored the range, or a short object
		rc.Close()
		return nil, fmt.Errorf("store: get %s: asked for %d bytes at %d, got %d", key, n, off, oi.Size)
	}
	return rc, nil
}

// Stat sends a HEAD request.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	oi, err := s.core.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.fail("stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, ETag: unquote(oi.ETag), Modified: oi.LastModified}, nil
}

// List pages through ListObjectsV2.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx) // stops the lister when fn stops early
	defer cancel()
	for oi := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.name(prefix), Recursive: true}) {
		if oi.Err != nil {
			return s.fail("list", prefix, oi.Err)
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if CheckKey(key) != nil {
			continue // not written by the vault
		}
		if err := fn(Info{Key: key, Size: oi.Size, ETag: unquote(oi.ETag), Modified: oi.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the object; S3 answers a missing key with success.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := s.core.RemoveObject(ctx, s.bucket, s.name(key), minio.RemoveObjectOptions{}); err != nil {
		return s.fail("delete", key, err)
	}
	return nil
}

// exactly reads size bytes of r and fails if r ends sooner, so a short
// body is an error here rather than a truncated object there.
func exactly(r io.Reader, size int64) io.Reader {
	return &exactReader{r: io.LimitReader(r, size), left: size}
}

type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = fmt.Errorf("the body ended %d bytes short: %w", e.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }

// code is the S3 error code of err, or "".
func code(err error) string {
	if err == nil {
		return ""
	}
	return minio.ToErrorResponse(err).Code
}

// fail turns a client error into the package's errors, with the fix.
func (s *S3) fail(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NoSuchUpload":
		return fmt.Errorf("store: %s %s: %w", op, key, ErrNotFound)
	case "NoSuchBucket":
		return fmt.Errorf("store: %s %s: bucket %q does not exist; create it or fix s3.bucket: %w", op, key, s.bucket, err)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "XAdminUserNotFound":
		// The last is versitygw's answer to an unknown access key.
		return fmt.Errorf("store: %s %s: the server refused the credentials; check s3.credentials_file and the bucket's policy: %w", op, key, err)
	}
	if resp.StatusCode == http.StatusNotFound && resp.Code == "" { // a HEAD answer has no body
		return fmt.Errorf("store: %s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("store: %s %s: %w", op, key, err)
}
