package store

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
)

// CreateMultipart begins an upload; the object's retention, if any, is set
// now and applies when the upload completes.
func (s *S3) CreateMultipart(ctx context.Context, key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, s.name(key), s.putOptions())
	if err != nil {
		return "", s.fail("begin upload of", key, err)
	}
	return id, nil
}

// UploadPart sends one part.
func (s *S3) UploadPart(ctx context.Context, key, id string, num int, r io.Reader, size int64) (Part, error) {
	if err := CheckKey(key); err != nil {
		return Part{}, err
	}
	if num < 1 || num > MaxParts || size < 0 || size > maxPartSize {
		return Part{}, fmt.Errorf("store: upload %s part %d of %d bytes: parts are numbered 1 to %d and at most 5 GiB", key, num, size, MaxParts)
	}
	p, err := s.core.PutObjectPart(ctx, s.bucket, s.name(key), id, num, exactly(r, size), size, minio.PutObjectPartOptions{})
	if err != nil {
		return Part{}, s.fail(fmt.Sprintf("upload part %d of", num), key, err)
	}
	return Part{Number: num, Size: size, ETag: unquote(p.ETag)}, nil
}

// ListParts pages through the upload's parts.
func (s *S3) ListParts(ctx context.Context, key, id string) ([]Part, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	var parts []Part
	marker := 0
	for {
		res, err := s.core.ListObjectParts(ctx, s.bucket, s.name(key), id, marker, 1000)
		if err != nil {
			return nil, s.fail("list parts of", key, err)
		}
		for _, p := range res.ObjectParts {
			parts = append(parts, Part{Number: p.PartNumber, Size: p.Size, ETag: unquote(p.ETag)})
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker || len(parts) > MaxParts {
			return parts, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// ListUploads pages through the bucket's uploads under prefix.
func (s *S3) ListUploads(ctx context.Context, prefix string) ([]Upload, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var ups []Upload
	keyMarker, idMarker := "", ""
	for {
		res, err := s.core.ListMultipartUploads(ctx, s.bucket, s.name(prefix), keyMarker, idMarker, "", 1000)
		if err != nil {
			return nil, s.fail("list uploads under", prefix, err)
		}
		for _, u := range res.Uploads {
			if key := strings.TrimPrefix(u.Key, s.prefix); CheckKey(key) == nil {
				ups = append(ups, Upload{Key: key, ID: u.UploadID})
			}
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return ups, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

// CompleteMultipart joins the parts.
func (s *S3) CompleteMultipart(ctx context.Context, key, id string, parts []Part) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	if len(parts) == 0 {
		return Info{}, fmt.Errorf("store: complete %s: no parts given; upload at least one", key)
	}
	cps := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		cps[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, s.name(key), id, cps, minio.PutObjectOptions{}); err != nil {
		return Info{}, s.fail("complete", key, err)
	}
	return s.Stat(ctx, key)
}

// AbortMultipart discards the upload.
func (s *S3) AbortMultipart(ctx context.Context, key, id string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := s.core.AbortMultipartUpload(ctx, s.bucket, s.name(key), id); err != nil {
		return s.fail("abort upload of", key, err)
	}
	return nil
}
