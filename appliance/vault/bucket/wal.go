package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// WAL grows a record at a time, but objects cannot be appended to. The
// growing segment therefore lives in the vault node's local journal (the
// fsynced partial file the vault acknowledges from: an acknowledgement
// means the record is on the vault node's disk, not yet in the bucket).
// FlushPartial copies what the journal gained since the last flush into
// one new object named by its offset, so the bucket lags the journal by
// at most one flush interval and every batch is written once; the
// complete segment is then written as one object and its batches deleted.

func segmentKey(ns, name string) string  { return path.Join(ns, "wal", name) }
func batchPrefix(ns, name string) string { return segmentKey(ns, name) + ".partial/" }

// batchName is a batch's offset as fixed-width hex, so key order is
// offset order.
func batchName(off int64) string { return fmt.Sprintf("%016x", off) }

// PutSegment stores a complete segment as one object, if absent; a
// segment stored before with the same size (a retry after a crash) counts
// as stored. Its flushed batches are deleted afterwards.
func (b *Bucket) PutSegment(ctx context.Context, ns, name string, data io.ReaderAt, size int64) error {
	key := segmentKey(ns, name)
	_, err := b.st.PutIfAbsent(ctx, key, io.NewSectionReader(data, 0, size), size)
	if errors.Is(err, store.ErrExists) {
		fi, serr := b.st.Stat(ctx, key)
		if serr == nil && fi.Size != size {
			serr = fmt.Errorf("%s is stored with %d bytes, not %d; the segment differs from the stored one, check both before deleting either", key, fi.Size, size)
		}
		err = serr
	}
	if err != nil {
		return fmt.Errorf("bucket: store segment %s: %w", name, err)
	}
	return b.deleteBatches(ctx, ns, name)
}

// batches lists a segment's flushed batches by offset.
func (b *Bucket) batches(ctx context.Context, ns, name string) ([]store.Info, []int64, error) {
	var infos []store.Info
	var offs []int64
	err := b.st.List(ctx, batchPrefix(ns, name), func(fi store.Info) error {
		off, err := strconv.ParseInt(strings.TrimPrefix(fi.Key, batchPrefix(ns, name)), 16, 64)
		if err == nil && off >= 0 {
			infos, offs = append(infos, fi), append(offs, off)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bucket: list batches of %s: %w", name, err)
	}
	return infos, offs, nil
}

// flushedEnd is where the run of batches that continue each other from
// offset 0 ends.
func flushedEnd(infos []store.Info, offs []int64) int64 {
	var end int64
	for i, fi := range infos {
		if offs[i] != end {
			break
		}
		end += fi.Size
	}
	return end
}

// FlushPartial writes the journal's bytes beyond what the bucket holds as
// one batch and returns how many bytes of the segment the bucket now
// holds. journal is the growing segment's local file, size its durable
// length. A flush cut short by a crash left either a whole batch or none,
// and the next flush continues from the batches found.
func (b *Bucket) FlushPartial(ctx context.Context, ns, name string, journal io.ReaderAt, size int64) (int64, error) {
	infos, offs, err := b.batches(ctx, ns, name)
	if err != nil {
		return 0, err
	}
	end := flushedEnd(infos, offs)
	if end >= size {
		return end, nil
	}
	_, err = b.st.PutIfAbsent(ctx, batchPrefix(ns, name)+batchName(end), io.NewSectionReader(journal, end, size-end), size-end)
	if errors.Is(err, store.ErrExists) {
		return b.FlushPartial(ctx, ns, name, journal, size) // another flush got there first
	}
	if err != nil {
		return end, fmt.Errorf("bucket: flush %s at %d: %w", name, end, err)
	}
	return size, nil
}

// Partial reads back the flushed part of a growing segment, at most max
// bytes.
func (b *Bucket) Partial(ctx context.Context, ns, name string, max int64) ([]byte, error) {
	infos, offs, err := b.batches(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if end := flushedEnd(infos, offs); end > max {
		return nil, fmt.Errorf("bucket: segment %s has %d bytes flushed, more than a segment's %d", name, end, max)
	}
	var buf bytes.Buffer
	for i, fi := range infos {
		if offs[i] != int64(buf.Len()) {
			break
		}
		data, err := store.ReadAll(ctx, b.st, fi.Key, fi.Size)
		if err != nil {
			return nil, err
		}
		buf.Write(data)
	}
	return buf.Bytes(), nil
}

// Segment reads a complete segment of at most max bytes.
func (b *Bucket) Segment(ctx context.Context, ns, name string, max int64) ([]byte, error) {
	return store.ReadAll(ctx, b.st, segmentKey(ns, name), max)
}

// DeleteSegment removes a segment and its batches, once retention no
// longer needs it.
func (b *Bucket) DeleteSegment(ctx context.Context, ns, name string) error {
	if err := b.st.Delete(ctx, segmentKey(ns, name)); err != nil {
		return fmt.Errorf("bucket: delete segment %s: %w", name, err)
	}
	return b.deleteBatches(ctx, ns, name)
}

func (b *Bucket) deleteBatches(ctx context.Context, ns, name string) error {
	infos, _, err := b.batches(ctx, ns, name)
	for _, fi := range infos {
		if err == nil {
			err = b.st.Delete(ctx, fi.Key)
		}
	}
	if err != nil {
		return fmt.Errorf("bucket: delete batches of %s: %w", name, err)
	}
	return nil
}
