package archive

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"filippo.io/age"
)

// FetchWAL writes the WAL file PostgreSQL asks for (a segment name, or
// TLI.history) to dest, decrypted and decompressed: this is what a restore's
// restore_command runs. A segment stored only partially is served
// zero-padded, which PostgreSQL reads as the end of WAL. It returns
// ErrNoSegment (wrapped) when the repository does not hold the file, which
// tells PostgreSQL that recovery has reached the end of the archive.
func (r *Repo) FetchWAL(name, dest string, ids []age.Identity) error {
	if tliHex, ok := strings.CutSuffix(name, ".history"); ok {
		var tli uint32
		if _, err := fmt.Sscanf(tliHex, "%08X", &tli); err != nil || len(tliHex) != 8 {
			return fmt.Errorf("archive: %q is not a WAL file name", name)
		}
		data, err := r.ReadHistory(tli, ids)
		if err != nil {
			return err
		}
		return os.WriteFile(dest, data, 0o600)
	}
	return r.fetchSegment(name, dest, ids, false)
}

// FetchComplete writes a complete segment to dest like FetchWAL, and fails
// for one stored only partially (which may still grow).
func (r *Repo) FetchComplete(name, dest string, ids []age.Identity) error {
	return r.fetchSegment(name, dest, ids, true)
}

// fetchBufs recycles the buffers of a fetch (a prefetcher fetches one
// segment after another): allocating and clearing 16 MB each time costs
// more than decompressing into it.
var fetchBufs = make(chan *segBuf, 2)

// segBuf holds one decrypted segment and its compressed bytes: a reader of
// one segment after another (a prefetcher, a verify worker) keeps one.
type segBuf struct {
	seg  []byte
	z    bytes.Buffer
	copy []byte // for copying an archive's files through their checksums
}

// sized returns the segment buffer, allocated at the segment size n.
func (b *segBuf) sized(n uint64) []byte {
	if uint64(len(b.seg)) != n {
		b.seg = make([]byte, n)
	}
	return b.seg
}

func (r *Repo) fetchSegment(name, dest string, ids []age.Identity, complete bool) error {
	tli, segNo, ok := parseSegName(name, r.Info.SegmentSize)
	if !ok {
		return fmt.Errorf("archive: %q: %w", name, ErrNoSegment)
	}
	var buf *segBuf
	select {
	case buf = <-fetchBufs:
	default:
		buf = new(segBuf)
	}
	defer func() {
		select {
		case fetchBufs <- buf:
		default:
		}
	}()
	sd, err := r.readSegment(tli, segNo, ids, buf.sized(r.Info.SegmentSize), &buf.z)
	if err != nil {
		return err
	}
	if complete && sd.Partial {
		return fmt.Errorf("archive: %s is stored only partially", name)
	}
	// No fsync: PostgreSQL replays from this file and fetches it again if
	// it crashes, so durability would only slow recovery down.
	return os.WriteFile(dest, sd.Data, 0o600)
}

// HasLaterSegment reports whether the repository holds WAL after the named
// segment on its timeline: then that segment is missing, not past the end.
func (r *Repo) HasLaterSegment(name string) bool {
	tli, segNo, ok := parseSegName(name, r.Info.SegmentSize)
	if !ok {
		return false
	}
	tls, err := r.scanWAL()
	if err != nil || tls[tli] == nil {
		return false
	}
	for _, s := range tls[tli].Segments {
		if s.SegNo > segNo {
			return true
		}
	}
	return false
}

// SegmentName is PostgreSQL's name of a WAL segment.
func SegmentName(tli uint32, segNo, segSize uint64) string { return segName(tli, segNo, segSize) }

// ParseSegmentName reads a WAL segment's name; ok is false for other names
// (history files, partial segments).
func ParseSegmentName(name string, segSize uint64) (tli uint32, segNo uint64, ok bool) {
	return parseSegName(name, segSize)
}
