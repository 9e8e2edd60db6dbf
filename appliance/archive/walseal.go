package archive

import (
	"errors"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/signer"
)

// WALSealer seals streamed WAL exactly as WALWriter stores it, for a writer
// whose repository lives elsewhere: the box seals and signs, the offsite
// vault stores the sealed records without the key, and the result is the
// same repository format.
type WALSealer struct{ r *Repo }

// NewWALSealer seals to info's recipients and signs with k; info.Signer
// must name k's public key.
func NewWALSealer(info Info, k *signer.Key) (*WALSealer, error) {
	recips, err := ParseRecipients(info.Recipients)
	if err != nil {
		return nil, err
	}
	if k == nil || info.Signer != k.Public().String() {
		return nil, errors.New("archive: the WAL sealer needs the box signing key the repository names")
	}
	return &WALSealer{r: &Repo{Info: info, recips: recips, sign: k}}, nil
}

// Record returns one record of a segment's .partial.age file: the WAL
// bytes p found at offset in segment segNo of timeline tli, length-prefixed,
// signed and sealed.
func (s *WALSealer) Record(tli uint32, segNo uint64, offset int, p []byte) ([]byte, error) {
	return sealRecord(p, tli, segNo, offset, s.r)
}

// History seals a timeline history file.
func (s *WALSealer) History(tli uint32, content []byte) ([]byte, error) {
	return sealHistory(content, tli, s.r)
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
