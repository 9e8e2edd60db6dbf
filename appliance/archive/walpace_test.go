package archive

import (
	"slices"
	"testing"
	"time"
)

// slowDrive makes every segment's commit take d, as a drive's sync does
// when the drive takes bytes more slowly than the stream brings them (this
// is the drive's time, not a wait for another goroutine).
func slowDrive(t *testing.T, d time.Duration) {
	commitSegment = func(c commitJob) error {
		time.Sleep(d)
		return c.commit()
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
	const first, fast, slow = 4, 4, 8
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
	write(fast, first)
	slowDrive(t, 150*time.Millisecond)
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
	for i, codecs := range got[len(got)-2:] {
		if slices.ContainsFunc(codecs, func(c Codec) bool { return c != CodecZstd }) {
			t.Errorf("segment %d, drive taking 150 ms a segment: frames %v; want zstd only (all segments: %v)", first+len(got)-2+i, codecs, got)
		}
	}
}
