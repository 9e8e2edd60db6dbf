package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// WALWriter stores streamed WAL in the repository. Complete segments are
// written whole (compressed, encrypted, atomically). The segment still being
// received is made durable on Flush by appending an encrypted record to a
// .partial.age file, so a crash loses at most what was never reported as
// flushed, and a reader can serve the partial segment. Compressing,
// encrypting and writing happen on a worker goroutine (walworker.go) while
// the caller goes on receiving; Flush waits for it.
//
// Record format (hand-written because age seals whole files and a partial
// segment grows): a 4-byte big-endian length, then an age file whose
// plaintext is an 8-byte header (offset in the segment, raw length) and
// zstd frames of the bytes. A torn last record is ignored on reading.
type WALWriter struct {
	r    *Repo
	lock *os.File
	work *walWorker

	tli      uint32
	segNo    uint64
	fill     int     // bytes of the current segment received
	chunk    *[]byte // received bytes not yet given to the worker; they end at fill
	recorded int     // bytes of the current segment covered by records asked for
	lagged   int     // frames stored raw for lag since the last record or segment end
	flushed  LSN     // what the last Flush returned
	closed   bool
}

// ErrWALLocked means another process is writing WAL into the repository.
var ErrWALLocked = errors.New("archive: another process is streaming WAL into this repository")

// WAL opens the repository's WAL for writing. Only one writer at a time.
func (r *Repo) WAL() (*WALWriter, error) {
	if r.sign == nil {
		return nil, errors.New("archive: the repository was opened without the box signing key; WAL cannot be written to it")
	}
	l, err := r.lock(".lock-wal")
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, ErrWALLocked
	}
	return &WALWriter{r: r, lock: l, work: newWALWorker(r)}, nil
}

// WALStreaming reports whether a process holds the repository's WAL, that
// is, streams into it. It takes the lock for a moment when it is free: a
// stream starting at that moment finds it taken and tries again.
func (r *Repo) WALStreaming() (bool, error) {
	l, err := r.lock(".lock-wal")
	switch {
	case err != nil:
		return false, err
	case l == nil:
		return true, nil
	}
	return false, l.Close()
}

// Close releases the writer. Unflushed data is dropped: call Flush first.
func (w *WALWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	w.release()
	w.work.stop()
	return w.lock.Close()
}

// release gives the chunk being filled back unused.
func (w *WALWriter) release() {
	if w.chunk != nil {
		w.work.release(w.chunk)
		w.chunk = nil
	}
}

// reset waits for the worker to finish what it was given and drops the
// segment being assembled; a new session starts clean.
func (w *WALWriter) reset() {
	w.release()
	w.work.call(walJob{kind: resetJob})
}

func (w *WALWriter) segStart() LSN { return LSN(w.segNo * w.r.Info.SegmentSize) }

// Resume returns where stored WAL ends, as pg_receivewal decides: the
// highest segment wins; a partial one is streamed again from its start, a
// complete one means the next segment.
func (w *WALWriter) Resume() (uint32, LSN, bool, error) {
	w.reset()
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
	w.reset()
	w.tli, w.segNo, w.fill, w.recorded, w.lagged, w.flushed = tli, uint64(lsn)/w.r.Info.SegmentSize, 0, 0, 0, lsn
	if err := mkdirAll(w.r.walDir(tli)); err != nil {
		return err
	}
	removeStaleTemps(w.r.walDir(tli))
	return writeFileAtomic(w.r.segPath(tli, w.segNo, startSuffix), nil)
}

// removeStaleTemps removes complete segment files that a crashed writer
// left under their temporary names. Only the holder of the WAL lock writes
// them, so any found now are stale.
func removeStaleTemps(dir string) {
	tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"+segSuffix+"-*"))
	for _, t := range tmps {
		os.Remove(t)
	}
}

// Write appends WAL that starts at lsn, which must follow what came before.
// It copies data and returns; the worker compresses and stores it.
func (w *WALWriter) Write(lsn LSN, data []byte) error {
	if want := w.segStart() + LSN(w.fill); lsn != want {
		return fmt.Errorf("archive: WAL at %s does not follow %s", lsn, want)
	}
	if err := w.work.failure(); err != nil {
		return err
	}
	segSize := int(w.r.Info.SegmentSize)
	for len(data) > 0 {
		if w.chunk == nil {
			w.chunk = w.work.buffer()
		}
		c := *w.chunk
		n := min(len(data), cap(c)-len(c), segSize-w.fill)
		*w.chunk = append(c, data[:n]...)
		w.fill += n
		data = data[n:]
		switch {
		case w.fill == segSize:
			w.work.queue(w.cut(true))
			w.segNo++
			w.fill, w.recorded, w.lagged = 0, 0, 0
		case len(*w.chunk) == cap(*w.chunk):
			w.work.queue(w.cut(false))
		}
	}
	return nil
}

// laggedFrames bound the frames stored raw because the compressors lag:
// every frame is kept until the next record or the segment's end, and a
// raw one is the whole chunk, so without a bound a segment of them would
// hold 16 MB of the box's 64.
const laggedFrames = 4

// cut makes the chunk being filled into a frame job.
func (w *WALWriter) cut(last bool) walJob {
	n := len(*w.chunk)
	c := w.work.codec(w.lagged < laggedFrames)
	if c == CodecRaw {
		w.lagged++
	}
	j := walJob{kind: frameJob, tli: w.tli, segNo: w.segNo, off: w.fill - n, n: n, data: w.chunk, last: last, codec: c}
	w.chunk = nil
	return j
}

// Flush makes everything written durable and returns the position up to
// which WAL is safely stored.
func (w *WALWriter) Flush() (LSN, error) {
	end := w.segStart() + LSN(w.fill)
	if end == w.flushed {
		return end, w.work.failure()
	}
	if w.chunk != nil && len(*w.chunk) > 0 {
		if err := w.work.call(w.cut(false)); err != nil {
			return 0, err
		}
	}
	j := walJob{kind: checkJob}
	if w.fill > w.recorded {
		j = walJob{kind: recordJob, tli: w.tli, segNo: w.segNo, off: w.fill}
		w.recorded, w.lagged = w.fill, 0
	}
	if err := w.work.call(j); err != nil {
		return 0, err
	}
	w.flushed = end
	w.r.writeWALState(WALState{Timeline: w.tli, Flushed: end, Time: time.Now().UTC()})
	return end, nil
}

// History stores a timeline history file.
func (w *WALWriter) History(tli uint32, content []byte) error {
	if err := mkdirAll(w.r.walDir(tli)); err != nil {
		return err
	}
	sealed, err := sealHistory(content, tli, w.r)
	if err != nil {
		return err
	}
	return writeFileAtomic(w.r.historyPath(tli), sealed)
}

// SwitchTimeline ends the current timeline; its last segment stays partial.
func (w *WALWriter) SwitchTimeline(next uint32, end LSN) error {
	_, err := w.Flush()
	w.reset()
	return err
}

// recordEncoders keep the encoders of sealRecord across garbage
// collections (a sync.Pool is emptied at each, and under the service's
// memory limit they are frequent). Records are about a MiB (the offsite
// stream sends one per MiB at most), so a 1 MiB window loses nothing;
// the 4 MiB window of the streaming encoders kept 4 MiB of history each.
var recordEncoders = make(chan *frameEncoder, 2)

const recordWindow = 1 << 20

// sealRecord compresses and seals WAL bytes as one record of a partial file.
func sealRecord(p []byte, tli uint32, segNo uint64, offset int, r *Repo) ([]byte, error) {
	var enc *frameEncoder
	select {
	case enc = <-recordEncoders:
	default:
		z, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(recordWindow), zstd.WithLowerEncoderMem(true))
		enc = &frameEncoder{zstd: z}
	}
	frame, sum := enc.encode(make([]byte, 0, len(p)/2+frameHdr), CodecZstd, p)
	select {
	case recordEncoders <- enc:
	default:
	}
	var d digester
	d.add(len(p), sum)
	return appendRecord(nil, []*[]byte{&frame}, tli, segNo, offset, &d, r)
}

// sealHistory seals a timeline history file: "CBW3", one raw frame and the
// box's seal.
func sealHistory(content []byte, tli uint32, r *Repo) ([]byte, error) {
	p := appendFrame([]byte(magicWAL), CodecRaw, len(content), content)
	var d digester
	d.add(len(content), frameSum(p[len(magicWAL):]))
	p = r.seal(p, walStatement{kind: sealKindHistory, tli: tli, length: d.length, frames: d.frames, digest: d.digest()})
	return sealBytes(p, r.recips, false)
}

// frameEncoder encodes frames one at a time: a zstd encoder, and scratch
// blocks that the codecs write into, kept for the next frame. S2 writes
// only into room for its worst case (larger than the data); encoding there
// and copying what it wrote keeps each kept frame as small as its content.
type frameEncoder struct {
	zstd    *zstd.Encoder
	scratch []byte // S2's output
	out     []byte // zstd's output
}

// encode appends data to dst as one frame of codec c, header included, and
// returns it with the frame's SHA-256 (frameSum): hashed once, after
// compression, over the fewest bytes.
func (e *frameEncoder) encode(dst []byte, c Codec, data []byte) ([]byte, [32]byte) {
	start := len(dst)
	body, c := e.body(c, data)
	dst = appendFrame(dst, c, len(data), body)
	return dst, frameSum(dst[start:])
}

// encodeInto encodes data as one frame of codec c into a buffer from pool
// that fits it, and returns the buffer with the frame's SHA-256.
func (e *frameEncoder) encodeInto(pool *framePool, c Codec, data []byte) (*[]byte, [32]byte) {
	body, c := e.body(c, data)
	fb := pool.get(frameHdr + len(body))
	*fb = appendFrame((*fb)[:0], c, len(data), body)
	return fb, frameSum(*fb)
}

// body returns data's bytes as codec c stores them, in the encoder's
// scratch until its next use, and the codec. A frame that the codec would
// not make smaller is stored raw (body is data): no frame is larger than
// its data and a header, whatever the data.
func (e *frameEncoder) body(c Codec, data []byte) ([]byte, Codec) {
	var body []byte
	switch c {
	case CodecZstd:
		e.out = e.zstd.EncodeAll(data, e.out[:0])
		body = e.out
	case CodecS2:
		if n := s2.MaxEncodedLen(len(data)); len(e.scratch) < n {
			e.scratch = make([]byte, n)
		}
		body = s2.Encode(e.scratch, data)
	}
	if c == CodecRaw || len(body) >= len(data) {
		return data, CodecRaw
	}
	return body, c
}

// SetBehind tells the writer whether the stream is catching up on a
// backlog. While it is, frames are compressed with S2, several times faster
// than zstd's fastest level, or stored raw when even S2 falls behind the
// stream; once caught up, zstd again. Each frame names its codec, and every
// reader decodes them all.
func (w *WALWriter) SetBehind(behind bool) { w.work.behind.Store(behind) }
