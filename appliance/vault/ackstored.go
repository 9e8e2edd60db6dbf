package vault

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
)

// appendAcked appends a record to the journal while this node may write
// the namespace and, when the acknowledgement means "stored in the
// bucket" (Config.AckStored), flushes the segment it went into to the
// bucket; a record that could not be flushed is cut off again, so the box
// sends it again rather than count on it. b.mu is held.
func (v *Vault) appendAcked(ctx context.Context, b *box, body *spooled, off, n int) error {
	if !v.mayWrite(b.ns) {
		return errMoved(b.ns, bucket.ErrLost)
	}
	prev, rel, was := b.appendPoint(off)
	stored := v.cfg.AckStored && v.cfg.Bucket != nil
	var err error
	if stored {
		err = v.appendStored(ctx, b, body, off, n)
	} else {
		err = b.appendRecord(body, off, n)
	}
	if testHookAfterAppend != nil {
		testHookAfterAppend()
	}
	if err != nil || v.mayWrite(b.ns) {
		return err
	}
	// The lease ran out while writing: another node may read the
	// namespace back without this record, so the box must not count on
	// it, and this node must not keep it either (it would hold WAL the box
	// was told to send again). A record already in the bucket stays:
	// the next holder reads it back, and the box's copy is the same.
	err = problem("moved", "namespace %s: this vault node's lease ran out while it stored the record; send it again, to another vault node if this one keeps answering so", b.ns)
	if !stored {
		if cerr := b.cutBack(prev, rel, was); cerr != nil {
			return fmt.Errorf("%w; cutting it off the journal: %w", err, cerr)
		}
	}
	return err
}

// testHookAfterAppend, when set by a test, runs between a record's append
// and the lease's check after it.
var testHookAfterAppend func()

// appendPoint is where the next record at off goes: the position, the
// segment's file and its size, to cut the record off again.
func (b *box) appendPoint(off int) (walPos, string, int64) {
	prev := b.cur
	rel := inRepo(archive.WALFile(b.repo.Info.SegmentSize, prev.tli, prev.seg, archive.WALPartial))
	was := int64(0)
	if fi, err := b.root.Stat(rel); err == nil && off > 0 {
		was = fi.Size()
	}
	return prev, rel, was
}

// appendStored appends a record and flushes its segment to the bucket.
func (v *Vault) appendStored(ctx context.Context, b *box, body *spooled, off, n int) error {
	prev, rel, was := b.appendPoint(off)
	if b.trim != "" {
		// A flush whose answer was lost may have stored the record cut
		// off after it: the bucket must not hold more than the journal.
		tctx, cancel := v.writeDeadline(ctx, b.ns)
		defer cancel()
		if err := v.cfg.Bucket.TrimBatches(tctx, b.ns, b.trim, b.trimAt); err != nil {
			return fmt.Errorf("vault: store the record in the bucket: %w", err)
		}
		b.trim = ""
	}
	if err := b.appendRecord(body, off, n); err != nil {
		return err
	}
	if err := v.flushSegment(ctx, b, rel, int64(off+n)); err != nil {
		if cerr := b.cutBack(prev, rel, was); cerr != nil {
			return fmt.Errorf("vault: store the record in the bucket: %w; cutting it off the journal: %w", err, cerr)
		}
		b.trim, b.trimAt = segmentName(rel), was
		return fmt.Errorf("vault: store the record in the bucket: %w", err)
	}
	return nil
}

// segmentName is a segment's name in the bucket, from its path in the
// namespace directory.
func segmentName(rel string) string { return strings.TrimPrefix(filepath.ToSlash(rel), "repo/wal/") }

// flushSegment writes what the bucket lacks of a segment's file, which
// holds raw WAL bytes.
func (v *Vault) flushSegment(ctx context.Context, b *box, rel string, raw int64) error {
	f, err := b.root.Open(rel)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	ctx, cancel := v.writeDeadline(ctx, b.ns)
	defer cancel()
	_, err = v.cfg.Bucket.FlushPartial(ctx, b.ns, segmentName(rel), f, fi.Size(), raw)
	return err
}

// cutBack undoes the last append: the segment's file back to was bytes,
// its index back to the entries before, the position back to prev.
func (b *box) cutBack(prev walPos, rel string, was int64) error {
	idx := filepath.Join(b.dir, indexRel(prev.tli, prev.seg))
	fi, err := os.Stat(idx)
	if err != nil {
		return err
	}
	if err := os.Truncate(idx, fi.Size()-indexEntry); err != nil {
		return err
	}
	f, err := b.root.OpenFile(rel, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(was); err != nil {
		return err
	}
	b.cur = prev
	return f.Sync()
}

// storeDescription stores the repository's description in the bucket at
// once when another node may read the namespace back from the bucket or
// an acknowledgement means "stored": WAL in the bucket is of no use
// without it. b.mu is held.
func (v *Vault) storeDescription(ctx context.Context, b *box) error {
	if v.cfg.Bucket == nil || (!v.cfg.AckStored && !v.leased()) {
		return nil
	}
	data, err := b.root.ReadFile(inRepo("clinicbox-repo.json"))
	if err != nil {
		return fmt.Errorf("vault: store the repository's description: %w", err)
	}
	ctx, cancel := v.writeDeadline(ctx, b.ns)
	defer cancel()
	if err := v.cfg.Bucket.PutFile(ctx, b.ns, "clinicbox-repo.json", bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("vault: store the repository's description: %w", err)
	}
	return nil
}
