package archive

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// Segment names follow PostgreSQL: 8 hex digits each of timeline, "log" and
// segment within the log.
func segName(tli uint32, segNo, segSize uint64) string {
	per := 0x100000000 / segSize
	return fmt.Sprintf("%08X%08X%08X", tli, segNo/per, segNo%per)
}

// parseSegName reads a segment file name; ok is false for other names.
func parseSegName(name string, segSize uint64) (tli uint32, segNo uint64, ok bool) {
	if len(name) != 24 {
		return 0, 0, false
	}
	t, err1 := strconv.ParseUint(name[0:8], 16, 32)
	hi, err2 := strconv.ParseUint(name[8:16], 16, 32)
	lo, err3 := strconv.ParseUint(name[16:24], 16, 32)
	if err1 != nil || err2 != nil || err3 != nil || t == 0 {
		return 0, 0, false
	}
	return uint32(t), hi*(0x100000000/segSize) + lo, true
}

func tliDir(tli uint32) string { return fmt.Sprintf("%08X", tli) }

// parseTLIDir reads a timeline directory's name: exactly tliDir of a
// timeline above zero.
func parseTLIDir(name string) (uint32, bool) {
	t, err := strconv.ParseUint(name, 16, 32)
	if err != nil || t == 0 || name != tliDir(uint32(t)) {
		return 0, false
	}
	return uint32(t), true
}

// File name suffixes in wal/TLI/.
const (
	segSuffix     = ".zst.age"     // a complete segment: age(zstd(16 MB))
	partialSuffix = ".partial.age" // records of a segment still being written
	startSuffix   = ".start"       // a streaming session began at this segment
	historySuffix = ".history.age" // a timeline history file
)

func (r *Repo) walDir(tli uint32) string { return filepath.Join(r.Dir, "wal", tliDir(tli)) }

func (r *Repo) segPath(tli uint32, segNo uint64, suffix string) string {
	return filepath.Join(r.walDir(tli), segName(tli, segNo, r.Info.SegmentSize)+suffix)
}

func (r *Repo) historyPath(tli uint32) string {
	return filepath.Join(r.walDir(tli), tliDir(tli)+historySuffix)
}
