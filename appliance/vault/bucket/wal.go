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
// offset order, followed, when known, by the WAL bytes the segment holds
// at the batch's end: what a node taking the box over needs to rebuild
// the segment's index from the batches alone.
func batchName(off, raw int64) string {
	if raw < 0 {
		return fmt.Sprintf("%016x", off)
	}
	return fmt.Sprintf("%016x-%016x", off, raw)
}

// Batch is one flushed batch of a growing segment.
type Batch struct {
	Key  string
	Off  int64 // where it starts in the segment's file
	Size int64
	Raw  int64 // WAL bytes the segment holds at its end; -1 when not recorded
}

// parseBatch reads a batch's key relative to its segment's prefix.
func parseBatch(fi store.Info, rel string) (Batch, bool) {
	offHex, rawHex, hasRaw := strings.Cut(rel, "-")
	off, err := strconv.ParseInt(offHex, 16, 64)
	if err != nil || off < 0 || len(offHex) != 16 {
		return Batch{}, false
	}
	raw := int64(-1)
	if hasRaw {
		if raw, err = strconv.ParseInt(rawHex, 16, 64); err != nil || raw < 0 {
			return Batch{}, false
		}
	}
	return Batch{Key: fi.Key, Off: off, Size: fi.Size, Raw: raw}, true
}

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
func (b *Bucket) batches(ctx context.Context, ns, name string) ([]Batch, error) {
	var out []Batch
	err := b.st.List(ctx, batchPrefix(ns, name), func(fi store.Info) error {
		if bt, ok := parseBatch(fi, strings.TrimPrefix(fi.Key, batchPrefix(ns, name))); ok {
			out = append(out, bt)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bucket: list batches of %s: %w", name, err)
	}
	return out, nil
}

// Batches lists the run of a segment's batches that continue each other
// from offset 0: what the bucket holds of the segment being filled.
func (b *Bucket) Batches(ctx context.Context, ns, name string) ([]Batch, error) {
	all, err := b.batches(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return chained(all), nil
}

// chained is the run of batches that continue each other from offset 0.
// Two batches at one offset (two nodes wrote the segment, one of them
// after losing its lease) end the run before them: a reader never mixes
// the two.
func chained(all []Batch) []Batch {
	var out []Batch
	var end int64
	for i, bt := range all {
		if bt.Off != end || (i+1 < len(all) && all[i+1].Off == bt.Off) {
			break
		}
		out = append(out, bt)
		end += bt.Size
	}
	return out
}

// ErrAhead: the bucket holds more of a segment than the journal flushed
// from: a flush whose answer was lost, then cut off the journal, or a
// batch written by a node that had lost the lease.
var ErrAhead = errors.New("bucket: the bucket holds more of the segment than the journal")

// TrimBatches deletes a segment's batches that hold bytes from offset off
// on; the next flush writes again what they held before off.
func (b *Bucket) TrimBatches(ctx context.Context, ns, name string, off int64) error {
	all, err := b.batches(ctx, ns, name)
	for _, bt := range all {
		if err == nil && bt.Off+bt.Size > off {
			err = b.st.Delete(ctx, bt.Key)
		}
	}
	if err != nil {
		return fmt.Errorf("bucket: trim batches of %s: %w", name, err)
	}
	return nil
}

// ErrTwoWriters: a segment has two batches at one offset.
var ErrTwoWriters = errors.New("bucket: two batches at one offset of a segment: two vault nodes wrote it, one after losing its lease")

// flushedEnd is where the run of batches that continue each other from
// offset 0 ends.
func flushedEnd(all []Batch) int64 {
	var end int64
	for _, bt := range chained(all) {
		end += bt.Size
	}
	return end
}

// FlushPartial writes the journal's bytes beyond what the bucket holds as
// one batch and returns how many bytes of the segment the bucket now
// holds. journal is the growing segment's local file, size its durable
// length and raw the WAL bytes those size bytes hold (-1 when unknown). A
// flush cut short by a crash left either a whole batch or none, and the
// next flush continues from the batches found.
func (b *Bucket) FlushPartial(ctx context.Context, ns, name string, journal io.ReaderAt, size, raw int64) (int64, error) {
	all, err := b.batches(ctx, ns, name)
	if err != nil {
		return 0, err
	}
	end := flushedEnd(all)
	for _, bt := range all {
		if bt.Off == end && end < size {
			// Only a batch beside another at its offset is left out
			// of the run.
			return end, fmt.Errorf("%w: %s at %d; delete the batches from there (TrimBatches) and let the vault node holding the box read the namespace back", ErrTwoWriters, name, end)
		}
	}
	if end > size && raw >= 0 {
		return end, fmt.Errorf("%w: %s holds %d bytes in the bucket, %d in the journal", ErrAhead, name, end, size)
	}
	if end >= size {
		return end, nil
	}
	_, err = b.st.PutIfAbsent(ctx, batchPrefix(ns, name)+batchName(end, raw), io.NewSectionReader(journal, end, size-end), size-end)
	if errors.Is(err, store.ErrExists) {
		return b.FlushPartial(ctx, ns, name, journal, size, raw) // another flush got there first
	}
	if err != nil {
		return end, fmt.Errorf("bucket: flush %s at %d: %w", name, end, err)
	}
	return size, nil
}

// Partial reads back the flushed part of a growing segment, at most max
// bytes.
func (b *Bucket) Partial(ctx context.Context, ns, name string, max int64) ([]byte, error) {
	run, err := b.Batches(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if end := flushedEnd(run); end > max {
		return nil, fmt.Errorf("bucket: segment %s has %d bytes flushed, more than a segment's %d", name, end, max)
	}
	var buf bytes.Buffer
	for _, fi := range run {
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

// DropBatches deletes a segment's batches other than those kept: what a
// node taking the box over found past the run it could rebuild.
func (b *Bucket) DropBatches(ctx context.Context, ns, name string, keep map[string]bool) error {
	all, err := b.batches(ctx, ns, name)
	for _, bt := range all {
		if err == nil && !keep[bt.Key] {
			err = b.st.Delete(ctx, bt.Key)
		}
	}
	if err != nil {
		return fmt.Errorf("bucket: drop batches of %s: %w", name, err)
	}
	return nil
}

func (b *Bucket) deleteBatches(ctx context.Context, ns, name string) error {
	all, err := b.batches(ctx, ns, name)
	for _, fi := range all {
		if err == nil {
			err = b.st.Delete(ctx, fi.Key)
		}
	}
	if err != nil {
		return fmt.Errorf("bucket: delete batches of %s: %w", name, err)
	}
	return nil
}
