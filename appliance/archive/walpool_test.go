package archive

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// mixedSegment is WAL whose chunks compress to every size from a tenth to
// none of their length (clinic WAL's S2 frames are a quarter to a half MB
// of each half-MB chunk), in an order that changes from segment to segment.
func mixedSegment(r *Repo, segNo uint64) []byte {
	d := walSegment(r, 1, segNo)
	rng := rand.New(rand.NewPCG(segNo, 3))
	for off := 0; off+chunkSize <= len(d); off += chunkSize {
		noisy := rng.IntN(chunkSize)
		for i := off; i < off+noisy; i++ {
			if i%walPageSize >= 40 {
				d[i] = byte(rng.Uint32())
			}
		}
	}
	return d
}

// A stream catching up stores frames of every size; once the writer has
// had as many frame buffers as it uses at once, further segments allocate
// none: each frame takes a kept buffer that fits it. Frame buffers that
// grew under append, or were dropped past a count, were fresh memory on
// every segment, each page faulted in on first touch.
func TestCatchUpReusesFrameBuffers(t *testing.T) {
	r, _ := sizedRepo(t, 16<<20)
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Begin(1, LSN(r.Info.SegmentSize)); err != nil {
		t.Fatal(err)
	}
	w.SetBehind(true)
	at := LSN(r.Info.SegmentSize)
	var before, after runtime.MemStats
	write := func(segs int) {
		data := make([][]byte, segs)
		for i := range data {
			data[i] = mixedSegment(r, uint64(at)/r.Info.SegmentSize+uint64(i))
		}
		runtime.ReadMemStats(&before)
		for _, seg := range data {
			if err := w.Write(at, seg); err != nil {
				t.Fatal(err)
			}
			at += LSN(len(seg))
		}
		if _, err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write(4) // the writer's buffers, once
	const segs = 8
	write(segs)
	runtime.ReadMemStats(&after)
	// Each segment allocates a little for age and its file (1.0 to 1.4 MB
	// with -race, whose sync.Pool drops what it is given at random); its
	// frames, about half a segment, must not be among it (with buffers
	// that grew, a segment allocated 2.9 to 3.0 MB).
	perSeg := int64(after.TotalAlloc-before.TotalAlloc) / segs
	if perSeg > int64(r.Info.SegmentSize)/8 {
		t.Errorf("a catching-up segment of %d MB allocated %d KB; want at most %d KB", r.Info.SegmentSize>>20, perSeg>>10, r.Info.SegmentSize>>13)
	}
}
