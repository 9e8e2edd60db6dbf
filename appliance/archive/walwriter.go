package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
)

// WALWriter stores streamed WAL in the repository. Complete segments are
// written whole (compressed, encrypted, atomically). The segment still being
// received is made durable on Flush by appending an encrypted record to a
// .partial.age file, so a crash loses at most what was never reported as
// flushed, and a reader can serve the partial segment.
//
// Record format (hand-written because age seals whole files and a partial
// segment grows): a 4-byte big-endian length, then an age file whose
// plaintext is an 8-byte header (offset in the segment, raw length) and a
// zstd frame of the bytes. A torn last record is ignored on reading.
type WALWriter struct {
	r    *Repo
	lock *os.File

	tli      uint32
	segNo    uint64
	buf      []byte // the current segment, filled up to fill
	fill     int
	durable  int      // bytes of buf already recorded in the partial file
	partial  *os.File // nil until the first flush of this segment
	complete LSN      // everything below is in complete segment files
}

// ErrWALLocked means another process is writing WAL into the repository.
var ErrWALLocked = errors.New("archive: another process is streaming WAL into this repository")

// WAL opens the repository's WAL for writing. Only one writer at a time.
func (r *Repo) WAL() (*WALWriter, error) {
	l, err := r.lock(".lock-wal")
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, ErrWALLocked
	}
	return &WALWriter{r: r, lock: l, buf: make([]byte, r.Info.SegmentSize)}, nil
}

// Close releases the writer. Unflushed data is dropped: call Flush first.
func (w *WALWriter) Close() error {
	if w.partial != nil {
		w.partial.Close()
		w.partial = nil
	}
	return w.lock.Close()
}

func (w *WALWriter) segStart() LSN { return LSN(w.segNo * w.r.Info.SegmentSize) }

// Resume returns where stored WAL ends, as pg_receivewal decides: the
// highest segment wins; a partial one is streamed again from its start, a
// complete one means the next segment.
func (w *WALWriter) Resume() (uint32, LSN, bool, error) {
	cat, err := w.r.scanWAL()
	if err != nil {
		return 0, 0, false, err
	}
	best := SegmentFile{}
	for _, tl := range cat {
		for _, s := range tl.Segments {
			if s.TLI > best.TLI || (s.TLI == best.TLI && s.SegNo >= best.SegNo) {
				best = s
			}
		}
	}
	if best.TLI == 0 {
		return 0, 0, false, nil
	}
	next := best.SegNo
	if !best.Partial {
		next++
	}
	return best.TLI, LSN(next * w.r.Info.SegmentSize), true, nil
}

// Begin starts a streaming session at a segment boundary.
func (w *WALWriter) Begin(tli uint32, lsn LSN) error {
	if uint64(lsn)%w.r.Info.SegmentSize != 0 {
		return fmt.Errorf("archive: WAL session must start at a segment boundary, not %s", lsn)
	}
	w.closePartial()
	w.tli, w.segNo, w.fill, w.durable, w.complete = tli, uint64(lsn)/w.r.Info.SegmentSize, 0, 0, lsn
	if err := mkdirAll(w.r.walDir(tli)); err != nil {
		return err
	}
	return writeFileAtomic(w.r.segPath(tli, w.segNo, startSuffix), nil)
}

// Write appends WAL that starts at lsn, which must follow what came before.
func (w *WALWriter) Write(lsn LSN, data []byte) error {
	if want := w.segStart() + LSN(w.fill); lsn != want {
		return fmt.Errorf("archive: WAL at %s does not follow %s", lsn, want)
	}
	for len(data) > 0 {
		n := copy(w.buf[w.fill:], data)
		w.fill += n
		data = data[n:]
		if w.fill == len(w.buf) {
			if err := w.finishSegment(); err != nil {
				return err
			}
		}
	}
	return nil
}

// finishSegment writes the full segment and removes its partial records.
func (w *WALWriter) finishSegment() error {
	path := w.r.segPath(w.tli, w.segNo, segSuffix)
	err := writeAtomic(path, func(f io.Writer) error {
		s, err := newSealer(f, w.r.recips, true)
		if err != nil {
			return err
		}
		if _, err := s.Write(w.buf); err != nil {
			return explainFS(err)
		}
		return explainFS(s.Close())
	})
	if err != nil {
		return err
	}
	// The partial file may be this session's or an earlier session's (one
	// that stopped inside this segment and was restreamed from its start
	// without a flush in between): either way the complete segment
	// replaces it.
	w.closePartial()
	switch err := os.Remove(w.r.segPath(w.tli, w.segNo, partialSuffix)); {
	case err == nil:
		if err := syncDir(w.r.walDir(w.tli)); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("archive: remove partial WAL: %w", explainFS(err))
	}
	w.segNo++
	w.fill, w.durable = 0, 0
	w.complete = w.segStart()
	return nil
}

func (w *WALWriter) closePartial() {
	if w.partial != nil {
		w.partial.Close()
		w.partial = nil
	}
}

// Flush makes everything written durable and returns the position up to
// which WAL is safely stored.
func (w *WALWriter) Flush() (LSN, error) {
	if w.fill == w.durable {
		return w.flushed(), nil
	}
	if w.partial == nil {
		// A session restreams a segment from its start, so older records
		// of this segment are replaced.
		f, err := os.OpenFile(w.r.segPath(w.tli, w.segNo, partialSuffix), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, filePerm)
		if err != nil {
			return 0, fmt.Errorf("archive: %w", explainFS(err))
		}
		if err := syncDir(w.r.walDir(w.tli)); err != nil {
			f.Close()
			return 0, err
		}
		w.partial = f
	}
	rec, err := sealRecord(w.buf[w.durable:w.fill], w.durable, w.r)
	if err != nil {
		return 0, err
	}
	if _, err := w.partial.Write(rec); err != nil {
		return 0, fmt.Errorf("archive: write partial WAL: %w", explainFS(err))
	}
	if err := w.partial.Sync(); err != nil {
		return 0, fmt.Errorf("archive: sync partial WAL: %w", explainFS(err))
	}
	w.durable = w.fill
	return w.flushed(), nil
}

// flushed records and returns the durable end of WAL.
func (w *WALWriter) flushed() LSN {
	end := w.segStart() + LSN(w.fill)
	w.r.writeWALState(WALState{Timeline: w.tli, Flushed: end, Time: time.Now().UTC()})
	return end
}

// History stores a timeline history file.
func (w *WALWriter) History(tli uint32, content []byte) error {
	if err := mkdirAll(w.r.walDir(tli)); err != nil {
		return err
	}
	sealed, err := sealBytes(content, w.r.recips, false)
	if err != nil {
		return err
	}
	return writeFileAtomic(w.r.historyPath(tli), sealed)
}

// SwitchTimeline ends the current timeline; its last segment stays partial.
func (w *WALWriter) SwitchTimeline(next uint32, end LSN) error {
	_, err := w.Flush()
	w.closePartial()
	return err
}

func sealRecord(p []byte, offset int, r *Repo) ([]byte, error) {
	enc := encoders.Get().(*zstd.Encoder)
	plain := make([]byte, 8, 8+len(p)/2)
	binary.BigEndian.PutUint32(plain[0:], uint32(offset))
	binary.BigEndian.PutUint32(plain[4:], uint32(len(p)))
	plain = enc.EncodeAll(p, plain)
	encoders.Put(enc)
	sealed, err := sealBytes(plain, r.recips, false)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	binary.Write(&out, binary.BigEndian, uint32(len(sealed)))
	out.Write(sealed)
	return out.Bytes(), nil
}
