// Package store keeps the vault's immutable objects in a local directory or
// an S3-compatible bucket behind one interface.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store holds objects by key. Keys are slash-separated paths of
// [A-Za-z0-9._-] segments (see CheckKey). Objects are written whole and
// never appended to: a growing file lives elsewhere and is stored as new
// objects.
type Store interface {
	// PutIfAbsent stores exactly size bytes from r under key unless the key
	// exists, in which case it returns ErrExists and stores nothing.
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (Info, error)
	// PutIfMatch replaces the object under key only while its ETag is
	// still etag; otherwise it returns ErrConflict (or ErrNotFound when the
	// key is missing).
	PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, etag string) (Info, error)
	// Get reads n bytes of the object from off; n < 0 reads to its end.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Stat describes the object, or returns ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// List calls fn for every object whose key starts with prefix, in key
	// order.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes the object; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	Multipart
}

// Multipart builds one object from parts uploaded separately, so a large
// object survives an interrupted upload: the parts already stored stay,
// and the object appears only when the upload completes.
type Multipart interface {
	// CreateMultipart begins an upload to key and returns its ID.
	CreateMultipart(ctx context.Context, key string) (string, error)
	// UploadPart stores part number num (1 to MaxParts) of size bytes.
	UploadPart(ctx context.Context, key, upload string, num int, r io.Reader, size int64) (Part, error)
	// ListParts lists the parts stored so far, by number.
	ListParts(ctx context.Context, key, upload string) ([]Part, error)
	// ListUploads lists the uploads begun and not completed or aborted
	// under prefix: how an upload is found again after a restart.
	ListUploads(ctx context.Context, prefix string) ([]Upload, error)
	// CompleteMultipart joins the parts, in order, into the object.
	CompleteMultipart(ctx context.Context, key, upload string, parts []Part) (Info, error)
	// AbortMultipart discards the upload and its parts.
	AbortMultipart(ctx context.Context, key, upload string) error
}

// Info describes a stored object.
type Info struct {
	Key      string
	Size     int64
	ETag     string // changes whenever the object is replaced
	Modified time.Time
}

// Part is one stored part of a multipart upload.
type Part struct {
	Number int
	Size   int64
	ETag   string
}

// Upload is a multipart upload in progress.
type Upload struct {
	Key string
	ID  string
}

// MaxParts is the most parts one upload may have (S3's limit).
const MaxParts = 10000

var (
	// ErrNotFound: no object (or upload) under that key.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: PutIfAbsent found the key taken.
	ErrExists = errors.New("store: object exists")
	// ErrConflict: PutIfMatch found the object changed since its ETag was
	// read; read it again and retry.
	ErrConflict = errors.New("store: object changed since it was read")
)

// maxKey bounds a key's length (S3 allows 1024 bytes).
const maxKey = 512

// CheckKey reports why key cannot name an object, or nil. Segments that
// start with a dot are reserved for the local store's own files.
func CheckKey(key string) error {
	if key == "" || len(key) > maxKey {
		return fmt.Errorf("store: key %.40q: a key has 1 to %d bytes", key, maxKey)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg[0] == '.' || strings.IndexFunc(seg, badKeyRune) >= 0 {
			return fmt.Errorf("store: key %.80q: use segments of letters, digits, '.', '_' and '-' that do not start with '.', joined by single slashes", key)
		}
	}
	return nil
}

func badKeyRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
}

// checkPrefix accepts the empty prefix and any prefix of a valid key.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return CheckKey(strings.TrimSuffix(prefix, "/") + "x")
}

// ReadAll reads a whole object of at most max bytes; a bigger one is
// refused before any of it is read.
func ReadAll(ctx context.Context, s Store, key string, max int64) ([]byte, error) {
	fi, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if fi.Size > max {
		return nil, fmt.Errorf("store: read %s: %d bytes, more than the %d expected; the object is not what this key should hold", key, fi.Size, max)
	}
	rc, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err == nil && int64(len(data)) > max {
		err = fmt.Errorf("store: read %s: it grew past %d bytes while being read", key, max)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", key, err)
	}
	return data, nil
}
