package archive

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// The WAL writer hands full chunks of received bytes to a worker goroutine,
// so that receiving a backlog overlaps with compressing, encrypting and
// writing (the receiving side is mostly system calls). Each chunk is
// compressed exactly once into a frame (zstd; S2 or raw while catching up,
// see codec), and that frame serves twice: in the partial file's next
// record when the stream is flushed, and in the complete segment file,
// which grows under a temporary name as frames come and is renamed into
// place when the segment ends (frame.go has the format).
//
// A flush waits for the queue to drain and then does its part on the
// caller's goroutine: a caught-up stream flushes a few times a second with
// an empty queue, and handing such small work to another goroutine and back
// costs more in wake-ups than the work itself.
const (
	// chunkSize is the most WAL in one frame (a flush cuts a frame early).
	// A quarter MB compresses WAL with S2 as small as half a MB does (with
	// zstd alone, 1 % larger for 5 to 10 % more CPU), and halves every
	// buffer that scales with it: the chunks, the compressed frames queued
	// and each encoder's history and scratch. With half a MB, a stream
	// catching up on clinic WAL peaked at 60 to 67 MiB; now 57 to 60.
	chunkSize = 256 << 10
	// chunkBufs bound the WAL waiting to be compressed, and as many
	// compressed frames may wait to be written: with the frames of the
	// segment being assembled this keeps the writer well inside the box's
	// memory. A segment's fsync no longer holds the writer up (committer).
	chunkBufs = 8
)

type jobKind int

const (
	frameJob  jobKind = iota // compress data; the segment ends with it if last
	recordJob                // append the pending frames to the partial file and fsync it
	checkJob                 // report the error of an earlier job, if any
	resetJob                 // drop the segment being assembled and any error
)

type walJob struct {
	kind  jobKind
	tli   uint32
	segNo uint64
	off   int     // frameJob: where data starts in the segment; recordJob: where the record must end
	n     int     // frameJob: bytes of WAL
	data  *[]byte // frameJob: a chunk buffer, given back once compressed
	last  bool
	codec Codec // frameJob: how to store the frame
	// A queued frame is compressed by one of the compressors, which then
	// closes ready; frame is nil for a frame compressed inline.
	frame *[]byte
	sum   [32]byte // SHA-256 of the frame's WAL bytes
	ready chan struct{}
}

// walWorker compresses, seals and writes WAL, on its own goroutine for
// queued frames and on the caller's for the rest.
type walWorker struct {
	r        *Repo
	jobs     chan *walJob   // queued frames, in order, for the writer goroutine
	compress chan *walJob   // the same frames, for the compressors
	free     chan *[]byte   // chunk buffers not in use
	frames   *framePool     // buffers for compressed frames
	made     atomic.Int32   // chunk buffers allocated so far (up to chunkBufs)
	done     sync.WaitGroup // the worker's goroutines

	failed atomic.Bool // err is set
	behind atomic.Bool // the stream is catching up on a backlog (SetBehind)
	pace   drivePace   // whether the drive holds the stream up; its fields but bound are guarded by mu

	qmu        sync.Mutex
	idle       *sync.Cond // signalled when queued or committing drops to zero, and at each hand-over to the committer
	queued     int        // frames sent to the worker and not yet done
	committing int        // segments handed to the committer and not yet done
	commitErr  error      // the first failed commit since the last reset

	// commits are complete segments, written and sealed, waiting for their
	// fsync and rename (committer).
	commits chan commitJob

	// mu is held while a job runs; it guards the fields below.
	mu      sync.Mutex
	err     error // the first failure since the last reset; later jobs are skipped
	enc     *frameEncoder
	partBuf *bufio.Writer // between a record's age writer and partial, reused

	// The segment being assembled.
	tli      uint32
	segNo    uint64
	active   bool
	out      *atomicFile    // its complete file, from its first frame on
	outBuf   *bufio.Writer  // between sealed and out, reused for every segment
	sealed   io.WriteCloser // age writer over outBuf
	pending  []*[]byte      // frames not yet recorded in the partial file, from frames; kept, not copied
	pendFrom int            // the segment range pending covers
	pendTo   int            //
	pendSum  digester       // the digest of the pending frames, for the record's signature
	segSum   digester       // the digest of the segment's frames, for the complete file's
	partial  *os.File       // nil until the segment's first record
}

// compressors compress queued frames in parallel while one goroutine
// writes them in order: draining a backlog is bound by compression, so
// every core of a Pi (four) compresses. Each costs an encoder of about a MB.
var compressors = min(4, runtime.GOMAXPROCS(0))

func newWALWorker(r *Repo) *walWorker {
	w := &walWorker{r: r, jobs: make(chan *walJob, chunkBufs), compress: make(chan *walJob, chunkBufs),
		free: make(chan *[]byte, chunkBufs), frames: &framePool{}, enc: newFrameEncoder(), commits: make(chan commitJob, 1)}
	w.idle = sync.NewCond(&w.qmu)
	w.done.Add(2 + compressors)
	go w.run()
	go w.committer()
	for range compressors {
		go w.compressor()
	}
	return w
}

// newFrameEncoder compresses one frame at a time, with a window no larger
// than a frame: the encoder's history never has to slide. It does not ask
// for lower encoder memory: on WAL that costs a fifth of the speed for a
// few hundred KB per encoder. Frames carry no zstd checksum: every byte of
// them is sealed by age, whose authentication already rejects any change,
// and the checksum would cost another pass over every WAL byte.
func newFrameEncoder() *frameEncoder {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(chunkSize), zstd.WithEncoderCRC(false))
	return &frameEncoder{zstd: enc}
}

// compressor compresses queued frames and gives their chunk buffers back.
func (w *walWorker) compressor() {
	defer w.done.Done()
	enc := newFrameEncoder()
	for j := range w.compress {
		if !w.failed.Load() {
			j.frame, j.sum = enc.encodeInto(w.frames, j.codec, *j.data)
		}
		w.release(j.data)
		j.data = nil
		close(j.ready)
	}
}

// framePool keeps buffers for compressed frames for the writer's life,
// by size: each buffer's capacity is a multiple of frameClass, and a frame
// is copied from its encoder's scratch into a kept buffer of the smallest
// class that holds it. A buffer is never grown, so no frame leaves a
// smaller buffer behind as garbage. Before, a frame buffer had a quarter MB
// and grew under append whenever an S2 or raw frame did not fit (clinic WAL
// makes S2 frames of about half their chunk), and buffers beyond the pool's
// count were dropped: every drain kept allocating fresh memory, whose pages
// the kernel faults in one at a time on first touch, and under the memory
// limit the runtime handed freed pages back to the kernel soon after, to be
// faulted in again. Only buffers that were in use at once are ever kept, so
// the pool holds no more than the writer's peak, and never more than
// maxKeptFrames bytes.
type framePool struct {
	mu   sync.Mutex
	free [frameClasses][]*[]byte // by class: capacity (i+1)*frameClass
	kept int                     // bytes of capacity in free
}

const (
	// frameClass is the step between frame buffer sizes.
	frameClass = 64 << 10
	// frameClasses cover the largest frame: a whole chunk stored raw.
	frameClasses = (frameHdr + chunkSize + frameClass - 1) / frameClass
	// frameReach is how many classes larger than it needs a frame may take
	// a kept buffer from rather than allocate one: beyond that a small
	// frame would hold a large buffer for as long as it is pending.
	frameReach = 1
	// maxKeptFrames bounds the free buffers kept: a 16 MB segment's
	// pending frames stored S2 and the frames in flight.
	maxKeptFrames = 16 << 20
)

// get returns an empty buffer of at least n bytes' capacity: a kept one
// of the smallest class that fits, or a new one.
func (p *framePool) get(n int) *[]byte {
	c := (n+frameClass-1)/frameClass - 1
	p.mu.Lock()
	for i := max(c, 0); i < min(c+1+frameReach, frameClasses); i++ {
		if k := len(p.free[i]); k > 0 {
			b := p.free[i][k-1]
			p.free[i][k-1] = nil
			p.free[i] = p.free[i][:k-1]
			p.kept -= cap(*b)
			p.mu.Unlock()
			return b
		}
	}
	p.mu.Unlock()
	b := make([]byte, 0, (max(c, 0)+1)*frameClass)
	return &b
}

// put keeps a frame buffer for reuse, or drops it when enough are kept or
// it is not one of get's.
func (p *framePool) put(b *[]byte) {
	*b = (*b)[:0]
	c := cap(*b)/frameClass - 1
	if c < 0 || c >= frameClasses || cap(*b)%frameClass != 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kept+cap(*b) <= maxKeptFrames {
		p.free[c] = append(p.free[c], b)
		p.kept += cap(*b)
	}
}

// codec chooses how to store the next frame: zstd when the stream is
// caught up, or when it catches up but the drive is what holds it up
// (drivePace); otherwise S2 while it catches up; raw while it catches up
// and every chunk buffer is waiting to be compressed, so that the receiver
// would otherwise stop and wait for the compressors, if rawOK. Buffers are
// given back as soon as they are compressed, before their frames are
// written, so a slow drive never reads as slow compression here (it holds
// up queue instead).
func (w *walWorker) codec(rawOK bool) Codec {
	switch {
	case !w.behind.Load(), w.pace.bound.Load():
		return CodecZstd
	case rawOK && w.made.Load() >= chunkBufs && len(w.free) == 0:
		return CodecRaw
	}
	return CodecS2
}

// buffer returns an empty chunk buffer, waiting for the worker to give one
// back when all are in use.
func (w *walWorker) buffer() *[]byte {
	select {
	case b := <-w.free:
		return b
	default:
	}
	if w.made.Add(1) <= chunkBufs {
		b := make([]byte, 0, chunkSize)
		return &b
	}
	w.made.Add(-1)
	return <-w.free
}

// release gives a chunk buffer back.
func (w *walWorker) release(b *[]byte) {
	*b = (*b)[:0]
	w.free <- b
}

// failure reports whether a job failed since the last reset.
func (w *walWorker) failure() error {
	if !w.failed.Load() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.takeCommitErr()
	return w.err
}

// queue gives a frame to the compressors and the writer goroutine.
func (w *walWorker) queue(j walJob) {
	w.qmu.Lock()
	w.queued++
	w.qmu.Unlock()
	j.ready = make(chan struct{})
	w.compress <- &j
	w.jobs <- &j
}

// call runs j on the calling goroutine once every queued job is done and
// every complete segment is committed.
func (w *walWorker) call(j walJob) error {
	w.qmu.Lock()
	for w.queued > 0 || w.committing > 0 {
		w.idle.Wait()
	}
	w.qmu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pace.idle()
	return w.do(j)
}

// stop ends the worker's goroutines after a reset.
func (w *walWorker) stop() {
	w.call(walJob{kind: resetJob})
	close(w.compress)
	close(w.jobs)
	close(w.commits)
	w.done.Wait()
}

// run writes queued frames in order as they are compressed.
func (w *walWorker) run() {
	defer w.done.Done()
	for j := range w.jobs {
		<-j.ready
		w.mu.Lock()
		w.do(*j)
		w.mu.Unlock()
		w.qmu.Lock()
		if w.queued--; w.queued == 0 {
			w.idle.Broadcast()
		}
		w.qmu.Unlock()
	}
}

// do runs one job; mu is held.
func (w *walWorker) do(j walJob) error {
	var err error
	w.takeCommitErr()
	switch j.kind {
	case frameJob:
		if w.err == nil {
			err = w.frame(j)
		}
		if j.data != nil {
			w.release(j.data)
		}
		if j.frame != nil && w.err != nil {
			w.frames.put(j.frame) // frame took it otherwise
		}
	case recordJob:
		if w.err == nil {
			err = w.record(j)
		}
	case resetJob:
		w.drop()
		w.qmu.Lock()
		w.commitErr = nil // call waited for the committer to be idle
		w.qmu.Unlock()
		w.err = nil
		w.failed.Store(false)
	}
	if err != nil && w.err == nil {
		w.err = err
		w.failed.Store(true)
	}
	return w.err
}
