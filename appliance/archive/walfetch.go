package archive

import (
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
	tli, segNo, ok := parseSegName(name, r.Info.SegmentSize)
	if !ok {
		return fmt.Errorf("archive: %q: %w", name, ErrNoSegment)
	}
	sd, err := r.ReadSegment(tli, segNo, ids)
	if err != nil {
		return err
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
