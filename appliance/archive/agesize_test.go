package archive

import (
	"bytes"
	"encoding/binary"
	"testing"

	"sync"

	"filippo.io/age"
)

// A partial file's record is streamed to the file behind a length prefix
// computed before it is encrypted: the prefix must be exactly what follows,
// at every size around age's chunk boundaries and for any number of
// recipients, and the record must open and read back.
func TestRecordLengthAnnounced(t *testing.T) {
	for _, recipients := range []int{1, 3} {
		r, ids := testRepo(t)
		for range recipients - 1 {
			id, err := age.GenerateX25519Identity()
			if err != nil {
				t.Fatal(err)
			}
			r.recips = append(r.recips, id.Recipient())
		}
		r.ageOnce, r.ageOver, r.ageErr = sync.Once{}, 0, nil
		// The record's plaintext is the data and about 160 bytes of
		// headers and seal: these sizes put its end on each side of one
		// and of two chunks.
		sizes := []int{0, 1, ageChunk}
		for k := 140; k < 180; k++ {
			sizes = append(sizes, ageChunk-k, 2*ageChunk-k)
		}
		for _, n := range sizes {
			data := bytes.Repeat([]byte{0xa5}, n)
			enc := newFrameEncoder()
			frame, sum := enc.encode(nil, CodecRaw, data)
			var d digester
			d.add(len(data), sum)
			rec, err := appendRecord(nil, []*[]byte{&frame}, 1, 7, 0, &d, r)
			if err != nil {
				t.Fatalf("%d recipients, %d bytes: %v", recipients, n, err)
			}
			if got, want := int(binary.BigEndian.Uint32(rec)), len(rec)-4; got != want {
				t.Fatalf("%d recipients, %d bytes: the record announces %d bytes; %d follow", recipients, n, got, want)
			}
			plain, err := openBytes(rec[4:], ids, false)
			if err != nil || !bytes.HasPrefix(plain, []byte(magicRecord)) {
				t.Fatalf("%d recipients, %d bytes: the record does not open: %v", recipients, n, err)
			}
		}
	}
}
