package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
)

// frame compresses one chunk, appends it to the complete file and keeps it
// for the next record; the last chunk of a segment completes the file.
func (w *walWorker) frame(j walJob) error {
	if !w.active || w.tli != j.tli || w.segNo != j.segNo {
		w.drop()
		w.tli, w.segNo, w.active = j.tli, j.segNo, true
		w.segSum.reset()
		w.pendFrom, w.pendTo = j.off, j.off
	}
	if j.off != w.pendTo {
		return fmt.Errorf("archive: WAL frame at %d does not follow %d", j.off, w.pendTo)
	}
	if w.out == nil {
		if err := w.openComplete(); err != nil {
			return err
		}
	}
	fb, sum := j.frame, j.sum
	if fb == nil {
		fb = w.frames.Get().(*[]byte)
		*fb, sum = w.enc.encode((*fb)[:0], j.codec, *j.data)
	}
	w.pending = append(w.pending, fb)
	w.pendTo += j.n
	w.pendSum.add(j.n, sum)
	w.segSum.add(j.n, sum)
	if _, err := w.sealed.Write(*fb); err != nil {
		return fmt.Errorf("archive: write WAL: %w", explainFS(err))
	}
	if j.last {
		return w.complete()
	}
	return nil
}

func (w *walWorker) openComplete() error {
	f, err := createAtomic(w.r.segPath(w.tli, w.segNo, segSuffix))
	if err != nil {
		return err
	}
	s, err := age.Encrypt(f, w.r.recips...)
	if err == nil {
		_, err = io.WriteString(s, magicWAL)
	}
	if err != nil {
		f.Abort()
		return fmt.Errorf("archive: encrypt: %w", err)
	}
	w.out, w.sealed = f, s
	return nil
}

// complete renames the finished segment into place and removes its partial
// file, which may be this session's or an earlier session's (one that
// stopped inside this segment and was restreamed from its start).
func (w *walWorker) complete() error {
	st := walStatement{kind: sealKindSegment, tli: w.tli, segNo: w.segNo, length: w.segSum.length, frames: w.segSum.frames, digest: w.segSum.digest()}
	_, err := w.sealed.Write(w.r.seal(nil, st))
	if err == nil {
		err = w.sealed.Close()
	}
	if err == nil {
		err = w.out.Commit()
	} else {
		w.out.Abort()
		err = fmt.Errorf("archive: write WAL: %w", explainFS(err))
	}
	w.out, w.sealed = nil, nil
	if err != nil {
		return err
	}
	w.closePartial()
	switch err := os.Remove(w.r.segPath(w.tli, w.segNo, partialSuffix)); {
	case err == nil:
		if err := syncDir(w.r.walDir(w.tli)); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("archive: remove partial WAL: %w", explainFS(err))
	}
	w.active = false
	w.clearPending()
	return nil
}

// clearPending gives the pending frames' buffers back.
func (w *walWorker) clearPending() {
	for i, fb := range w.pending {
		w.frames.Put(fb)
		w.pending[i] = nil
	}
	w.pending = w.pending[:0]
	w.pendSum.reset()
}

// record makes the pending frames durable as one record of the partial
// file. A session restreams a segment from its start, so its first record
// replaces older records of the segment.
func (w *walWorker) record(j walJob) error {
	if !w.active || w.tli != j.tli || w.segNo != j.segNo || w.pendTo != j.off {
		return fmt.Errorf("archive: WAL record up to %d does not match the frames (%d)", j.off, w.pendTo)
	}
	if w.partial == nil {
		f, err := os.OpenFile(w.r.segPath(w.tli, w.segNo, partialSuffix), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, filePerm)
		if err != nil {
			return fmt.Errorf("archive: %w", explainFS(err))
		}
		if err := syncDir(w.r.walDir(w.tli)); err != nil {
			f.Close()
			return err
		}
		w.partial = f
	}
	rec, err := appendRecord(w.rec[:0], w.pending, w.tli, w.segNo, w.pendFrom, &w.pendSum, w.r)
	if err != nil {
		return err
	}
	w.rec = rec
	if _, err := w.partial.Write(rec); err != nil {
		return fmt.Errorf("archive: write partial WAL: %w", explainFS(err))
	}
	if err := w.partial.Sync(); err != nil {
		return fmt.Errorf("archive: sync partial WAL: %w", explainFS(err))
	}
	w.clearPending()
	w.pendFrom = w.pendTo
	return nil
}

// drop abandons the segment being assembled: its complete file is removed
// and its partial file stays as the last record left it.
func (w *walWorker) drop() {
	if w.out != nil {
		w.out.Abort()
		w.out, w.sealed = nil, nil
	}
	w.closePartial()
	w.active = false
	w.clearPending()
}

func (w *walWorker) closePartial() {
	if w.partial != nil {
		w.partial.Close()
		w.partial = nil
	}
}

// appendRecord appends one partial-file record to dst: a 4-byte
// big-endian length, then an age file whose plaintext is "CBR2", the
// 8-byte header (offset in the segment, raw length), the frames of those
// bytes and the box's seal over them (frame.go).
func appendRecord(dst []byte, frames []*[]byte, tli uint32, segNo uint64, offset int, d *digester, r *Repo) ([]byte, error) {
	rawLen := int(d.length)
	size := 0
	for _, f := range frames {
		size += len(*f)
	}
	b := bytes.NewBuffer(dst)
	start := b.Len()
	b.Grow(4 + 8 + size + size/65536*16 + 512) // age adds a header and 16 bytes per 64 KB
	b.Write(make([]byte, 4))
	s, err := age.Encrypt(b, r.recips...)
	if err != nil {
		return dst, fmt.Errorf("archive: encrypt: %w", err)
	}
	var hdr [12]byte
	copy(hdr[:], magicRecord)
	binary.BigEndian.PutUint32(hdr[4:], uint32(offset))
	binary.BigEndian.PutUint32(hdr[8:], uint32(rawLen))
	s.Write(hdr[:])
	for _, f := range frames {
		s.Write(*f)
	}
	s.Write(r.seal(nil, walStatement{kind: sealKindRecord, tli: tli, segNo: segNo, offset: uint32(offset), length: d.length, frames: d.frames, digest: d.digest()}))
	if err := s.Close(); err != nil {
		return dst, fmt.Errorf("archive: encrypt: %w", err)
	}
	out := b.Bytes()
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out, nil
}
