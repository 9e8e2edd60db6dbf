package archive

import (
	"os"
	"slices"
	"testing"
	"time"
)

// driveTaking makes every segment's commit take d, as a drive's sync does
// when the drive takes bytes more slowly than the stream brings them (this
// is the drive's time, not a wait for another goroutine). The commit itself
// skips the fsyncs, so that the test's own disk, busy or not, adds nothing.
func driveTaking(t *testing.T, d time.Duration) {
	commitSegment = func(c commitJob) error {
		time.Sleep(d)
		if err := c.out.Close(); err != nil {
			return err
		}
		os.Remove(c.partial)
		return os.Rename(c.out.Name(), c.out.path)
	}
	t.Cleanup(func() { commitSegment = commitJob.commit })
}

// While a stream catches up, frames are S2 as long as the drive keeps up;
// once the writer spends most of its time waiting for the drive, they are
// zstd, which gives the drive fewer bytes to take.
func TestSlowDriveGetsZstdWhileBehind(t *testing.T) {
	r, ids := sizedRepo(t, 1<<20) // four frames per segment
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const first, fast, slow = 4, 4, 10
	at := LSN(first * r.Info.SegmentSize)
	if err := w.Begin(1, at); err != nil {
		t.Fatal(err)
	}
	w.SetBehind(true)
	write := func(n int, from uint64) {
		for seg := range uint64(n) {
			d := walSegment(r, 1, from+seg)
			if err := w.Write(at, d); err != nil {
				t.Fatal(err)
			}
			at += LSN(len(d))
		}
		if _, err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	driveTaking(t, 0)
	write(fast, first)
	driveTaking(t, 300*time.Millisecond)
	write(slow, first+fast)

	var got [][]Codec
	for segNo := uint64(first); segNo < first+fast+slow; segNo++ {
		got = append(got, segmentCodecs(t, r, segNo, ids))
	}
	for i, codecs := range got[:fast] {
		if slices.Contains(codecs, CodecZstd) {
			t.Errorf("segment %d, drive keeping up: frames %v; want S2 or raw, not zstd (all segments: %v)", first+i, codecs, got)
		}
	}
	if last := got[len(got)-1]; slices.ContainsFunc(last, func(c Codec) bool { return c != CodecZstd }) {
		t.Errorf("last segment, drive taking 300 ms a segment: frames %v; want zstd only (all segments: %v)", last, got)
	}
}
