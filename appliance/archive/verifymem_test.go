package archive

import (
	"context"
	"runtime"
	"testing"
)

// TestVerifyReusesSegmentBuffers verifies sixteen 1 MiB segments with one
// worker: it allocates less than a segment per segment, because the worker
// decrypts every segment into the same buffer (age's decryption still
// allocates a 64 KiB buffer per chunk it reads). Allocated afresh, the
// service's 16 MiB segments were most of what it allocated.
func TestVerifyReusesSegmentBuffers(t *testing.T) {
	r, ids := sizedRepo(t, 1<<20)
	streamWAL(t, r, 1, 1, 16, 0)
	verify := func() uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rep, err := r.Verify(context.Background(), VerifyOptions{Identities: ids, Parallel: 1})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Segments != 16 {
			t.Fatalf("verify: %d segments, problems %s; want 16 segments and none", rep.Segments, problemsOf(rep))
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	verify() // warm: the decoders' pools
	if got, limit := verify(), uint64(16<<20); got > limit {
		t.Errorf("verifying 16 MiB of WAL allocated %.1f MiB; want at most %.0f", float64(got)/(1<<20), float64(limit)/(1<<20))
	}
}
