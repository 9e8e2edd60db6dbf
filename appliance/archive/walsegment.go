package archive

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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
		fb, sum = w.enc.encodeInto(w.frames, j.codec, *j.data)
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

// segWriteBuf gathers age's 64 KB chunks into fewer, larger writes to a
// segment's complete file: one system call per chunk was a tenth of a
// backlog drain's CPU.
const segWriteBuf = 256 << 10

func (w *walWorker) openComplete() error {
	f, err := createAtomic(w.r.segPath(w.tli, w.segNo, segSuffix))
	if err != nil {
		return err
	}
	if w.outBuf == nil {
		w.outBuf = bufio.NewWriterSize(io.Discard, segWriteBuf)
	}
	w.outBuf.Reset(pacedWriter{f, &w.pace})
	s, err := age.Encrypt(w.outBuf, w.r.recips...)
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

// complete seals the finished segment and hands it to the committer,
// which makes it durable under its name while the next segment's frames
// are written: waiting for each segment's fsync held the whole stream up
// (a fifth of a backlog drain's time on a quiet disk). Flush and every
// other call wait for the committer, so nothing is reported flushed before
// it is durable.
func (w *walWorker) complete() error {
	st := walStatement{kind: sealKindSegment, tli: w.tli, segNo: w.segNo, length: w.segSum.length, frames: w.segSum.frames, digest: w.segSum.digest()}
	_, err := w.sealed.Write(w.r.seal(nil, st))
	if err == nil {
		err = w.sealed.Close()
	}
	if err == nil {
		err = w.outBuf.Flush()
	}
	if err != nil {
		w.out.Abort()
		w.out, w.sealed = nil, nil
		return fmt.Errorf("archive: write WAL: %w", explainFS(err))
	}
	w.closePartial()
	w.qmu.Lock()
	w.committing++
	w.idle.Broadcast()
	w.qmu.Unlock()
	handing := time.Now()
	w.commits <- commitJob{out: w.out, partial: w.r.segPath(w.tli, w.segNo, partialSuffix), dir: w.r.walDir(w.tli)}
	w.pace.handedOver(time.Since(handing))
	w.out, w.sealed = nil, nil
	w.active = false
	w.clearPending()
	return nil
}

// commitJob is a complete segment file waiting to be committed.
type commitJob struct {
	out     *atomicFile
	partial string // the segment's partial file, removed once it is committed
	dir     string
}

// committer commits complete segments in order: fsync, rename into place,
// then removal of the segment's partial file, which may be this session's
// or an earlier session's (one that stopped inside this segment and was
// restreamed from its start). After a failure it commits nothing more
// until a reset, so that a later segment never stands beyond a missing one.
func (w *walWorker) committer() {
	defer w.done.Done()
	for c := range w.commits {
		w.qmu.Lock()
		failed := w.commitErr != nil
		w.qmu.Unlock()
		var err error
		if failed {
			c.out.Abort()
		} else {
			err = commitSegment(c)
		}
		w.qmu.Lock()
		if err != nil && w.commitErr == nil {
			w.commitErr = err
			w.failed.Store(true)
		}
		if w.committing--; w.committing == 0 {
			w.idle.Broadcast()
		}
		w.qmu.Unlock()
	}
}

// commitSegment is commitJob.commit; tests replace it.
var commitSegment = commitJob.commit

func (c commitJob) commit() error {
	if err := c.out.Commit(); err != nil {
		return err
	}
	switch err := os.Remove(c.partial); {
	case err == nil:
		return syncDir(c.dir)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("archive: remove partial WAL: %w", explainFS(err))
	}
	return nil
}

// takeCommitErr makes a failed commit the worker's error; mu is held.
func (w *walWorker) takeCommitErr() {
	if w.err != nil {
		return
	}
	w.qmu.Lock()
	w.err = w.commitErr
	w.qmu.Unlock()
}

// clearPending gives the pending frames' buffers back.
func (w *walWorker) clearPending() {
	for i, fb := range w.pending {
		w.frames.put(fb)
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
	if err := w.writeRecord(); err != nil {
		return err
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

// writeRecord appends the pending frames to the partial file as one
// record and fsyncs it. The record streams through a buffer into the file
// instead of being sealed in memory first: while a stream catches up, a
// record can hold most of a segment, and a buffer that size, kept for the
// next record, cost a quarter of the writer's memory. Its length prefix is
// known ahead (ageSize); a record that comes out another length, or a
// failed write, is cut off again, so the file never holds a damaged record
// before the last one.
func (w *walWorker) writeRecord() error {
	st, err := w.partial.Stat()
	if err != nil {
		return fmt.Errorf("archive: partial WAL: %w", explainFS(err))
	}
	if w.partBuf == nil {
		w.partBuf = bufio.NewWriterSize(w.partial, segWriteBuf)
	}
	w.partBuf.Reset(w.partial)
	err = writeRecordTo(w.partBuf, w.pending, w.tli, w.segNo, w.pendFrom, &w.pendSum, w.r)
	if err == nil {
		err = w.partBuf.Flush()
	}
	if err == nil {
		err = w.partial.Sync()
	}
	if err != nil {
		w.partial.Truncate(st.Size())
		return fmt.Errorf("archive: write partial WAL: %w", explainFS(err))
	}
	return nil
}

// appendRecord appends one partial-file record to dst (writeRecordTo).
func appendRecord(dst []byte, frames []*[]byte, tli uint32, segNo uint64, offset int, d *digester, r *Repo) ([]byte, error) {
	b := bytes.NewBuffer(dst)
	err := writeRecordTo(b, frames, tli, segNo, offset, d, r)
	return b.Bytes(), err
}

// writeRecordTo writes one partial-file record: a 4-byte big-endian
// length, then an age file whose plaintext is "CBR3", the 8-byte header
// (offset in the segment, raw length), the frames of those bytes and the
// box's seal over them (frame.go).
func writeRecordTo(dst io.Writer, frames []*[]byte, tli uint32, segNo uint64, offset int, d *digester, r *Repo) error {
	seal := r.seal(nil, walStatement{kind: sealKindRecord, tli: tli, segNo: segNo, offset: uint32(offset), length: d.length, frames: d.frames, digest: d.digest()})
	plain := 12 + len(seal)
	for _, f := range frames {
		plain += len(*f)
	}
	over, err := r.ageOverhead()
	if err != nil {
		return err
	}
	size := ageSize(over, plain)
	cw := &countWriter{w: dst}
	var hdr [16]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(size))
	if _, err := dst.Write(hdr[:4]); err != nil {
		return err
	}
	s, err := age.Encrypt(cw, r.recips...)
	if err != nil {
		return fmt.Errorf("archive: encrypt: %w", err)
	}
	copy(hdr[4:], magicRecord)
	binary.BigEndian.PutUint32(hdr[8:], uint32(offset))
	binary.BigEndian.PutUint32(hdr[12:], d.length)
	s.Write(hdr[4:])
	for _, f := range frames {
		s.Write(*f)
	}
	s.Write(seal)
	if err := s.Close(); err != nil {
		return fmt.Errorf("archive: encrypt: %w", err)
	}
	if cw.n != size {
		return fmt.Errorf("archive: a WAL record came out %d bytes long, not the %d announced", cw.n, size)
	}
	return nil
}
