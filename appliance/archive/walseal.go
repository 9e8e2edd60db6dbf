package archive

import "path/filepath"

// WALSealer seals streamed WAL exactly as WALWriter stores it, for a writer
// whose repository lives elsewhere: the box seals, the offsite vault stores
// the sealed records without the key, and the result is the same
// repository format.
type WALSealer struct{ r *Repo }

// NewWALSealer seals to info's recipients.
func NewWALSealer(info Info) (*WALSealer, error) {
	recips, err := ParseRecipients(info.Recipients)
	if err != nil {
		return nil, err
	}
	return &WALSealer{r: &Repo{Info: info, recips: recips}}, nil
}

// Record returns one record of a segment's .partial.age file: the WAL
// bytes p found at offset in their segment, length-prefixed and sealed.
func (s *WALSealer) Record(offset int, p []byte) ([]byte, error) { return sealRecord(p, offset, s.r) }

// History seals a timeline history file.
func (s *WALSealer) History(content []byte) ([]byte, error) {
	return sealBytes(content, s.r.recips, false)
}

// Kinds of stored WAL files, for writers outside this package.
const (
	WALPartial = partialSuffix
	WALStart   = startSuffix
)

// WALFile is the path, relative to the repository, of a segment's file of
// the given kind (WALPartial or WALStart).
func WALFile(segSize uint64, tli uint32, segNo uint64, kind string) string {
	return filepath.Join("wal", tliDir(tli), segName(tli, segNo, segSize)+kind)
}

// HistoryFile is the path, relative to the repository, of a timeline's
// history file.
func HistoryFile(tli uint32) string {
	return filepath.Join("wal", tliDir(tli), tliDir(tli)+historySuffix)
}

// SetWALState records where stored WAL ends (wal/state.json), for a writer
// that stores WAL without a WALWriter.
func (r *Repo) SetWALState(s WALState) { r.writeWALState(s) }
