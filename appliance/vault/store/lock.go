package store

import (
	"context"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
)

// ObjectLock is the retention the bucket enforces on every object the
// vault writes: until it runs out, nobody (in compliance mode) or only
// callers allowed to bypass governance (in governance mode) can delete or
// overwrite the object, not even a compromised vault node with the
// vault's own credentials.
type ObjectLock struct {
	// Mode is GOVERNANCE or COMPLIANCE.
	Mode string `json:"mode"`
	// Days is how long each object is kept from the moment it is written.
	Days int `json:"days"`
	// Now is the clock; nil means time.Now.
	Now func() time.Time `json:"-"`
}

func (l *ObjectLock) validate() error {
	if l.Mode != "GOVERNANCE" && l.Mode != "COMPLIANCE" {
		return fmt.Errorf("s3.object_lock.mode %q: use GOVERNANCE or COMPLIANCE", l.Mode)
	}
	if l.Days < 1 || l.Days > 36500 {
		return fmt.Errorf("s3.object_lock.days %d: keep objects 1 to 36500 days (longer than retention keeps backups)", l.Days)
	}
	return nil
}

// apply adds the retention to a write's options; a nil lock adds none.
func (l *ObjectLock) apply(opts *minio.PutObjectOptions) {
	if l == nil {
		return
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	opts.Mode = minio.RetentionMode(l.Mode)
	opts.RetainUntilDate = now().Add(time.Duration(l.Days) * 24 * time.Hour).UTC().Truncate(time.Second)
}

// checkLock asks the bucket whether Object Lock is enabled on it.
func (s *S3) checkLock(ctx context.Context) error {
	enabled, _, _, _, err := s.core.GetObjectLockConfig(ctx, s.bucket)
	if err != nil || enabled != "Enabled" {
		return fmt.Errorf("store: bucket %q has no Object Lock (%v); create a bucket with Object Lock enabled, or remove s3.object_lock", s.bucket, err)
	}
	return nil
}

// Retention returns an object's lock mode and the time it is kept until,
// from the headers of a HEAD request. (GetObjectRetention would be the
// direct call, but versitygw v1.8.0 answers it with an XML element
// minio-go does not accept.)
func (s *S3) Retention(ctx context.Context, key string) (string, time.Time, error) {
	if err := CheckKey(key); err != nil {
		return "", time.Time{}, err
	}
	oi, err := s.core.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
	if err != nil {
		return "", time.Time{}, s.fail("retention of", key, err)
	}
	mode := oi.Metadata.Get("X-Amz-Object-Lock-Mode")
	raw := oi.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date")
	if mode == "" || raw == "" {
		return "", time.Time{}, nil
	}
	until, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("store: retention of %s: the server sent %q as the date: %w", key, raw, err)
	}
	return mode, until, nil
}
