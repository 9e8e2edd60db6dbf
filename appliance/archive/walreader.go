package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// ErrNoSegment means the repository does not hold the requested segment.
var ErrNoSegment = errors.New("segment not in the repository")

// SegmentData is a segment read back from the repository.
type SegmentData struct {
	Data    []byte // always the full segment size; a partial one is zero-padded
	Valid   int    // bytes of real WAL
	Partial bool
}

// ReadSegment decrypts one segment: the complete file when there is one,
// else the records of the partial file.
func (r *Repo) ReadSegment(tli uint32, segNo uint64, ids []age.Identity) (*SegmentData, error) {
	return r.readSegment(tli, segNo, ids, make([]byte, r.Info.SegmentSize), new(bytes.Buffer))
}

// readSegment is ReadSegment into data, a buffer of the segment size, with
// z to hold the compressed bytes.
func (r *Repo) readSegment(tli uint32, segNo uint64, ids []age.Identity, data []byte, z *bytes.Buffer) (*SegmentData, error) {
	z.Reset()
	path := r.segPath(tli, segNo, segSuffix)
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			z.Grow(int(st.Size())) // the plaintext is a little smaller: read it without regrowing
		}
		return r.readComplete(f, path, ids, data, z)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ppath := r.segPath(tli, segNo, partialSuffix)
	raw, err := os.ReadFile(ppath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("archive: %s: %w", segName(tli, segNo, r.Info.SegmentSize), ErrNoSegment)
	}
	if err != nil {
		return nil, err
	}
	clear(data)
	return r.readPartial(raw, ppath, ids, data)
}

// readComplete decrypts a complete segment and decompresses its frames
// straight into data (a streaming decoder would copy every byte once more).
func (r *Repo) readComplete(f io.Reader, path string, ids []age.Identity, data []byte, z *bytes.Buffer) (*SegmentData, error) {
	o, err := open(f, ids, false)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", path, err)
	}
	if _, err := z.ReadFrom(o); err != nil {
		return nil, fmt.Errorf("archive: %s is damaged or truncated: %w", path, err)
	}
	dec := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(dec)
	out, err := dec.DecodeAll(z.Bytes(), data[:0])
	switch {
	case err != nil:
		return nil, fmt.Errorf("archive: %s is damaged or truncated: %w", path, err)
	case len(out) != len(data):
		return nil, fmt.Errorf("archive: %s holds %d bytes, not a segment of %d", path, len(out), len(data))
	case &out[0] != &data[0]:
		return nil, fmt.Errorf("archive: %s is longer than a segment", path)
	}
	return &SegmentData{Data: data, Valid: len(data)}, nil
}

// readPartial reassembles a partial segment from its records. A torn last
// record (a crash during a flush that was never reported) is ignored; any
// other damage is an error.
func (r *Repo) readPartial(raw []byte, path string, ids []age.Identity, data []byte) (*SegmentData, error) {
	sd := &SegmentData{Data: data, Partial: true}
	dec := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(dec)
	for off := 0; off < len(raw); {
		if len(raw)-off < 4 {
			break // torn length prefix
		}
		n := int(binary.BigEndian.Uint32(raw[off:]))
		if off+4+n > len(raw) {
			break // torn record
		}
		plain, err := openBytes(raw[off+4:off+4+n], ids, false)
		if err != nil {
			return nil, fmt.Errorf("archive: %s: record at byte %d is damaged: %w", path, off, err)
		}
		if len(plain) < 8 {
			return nil, fmt.Errorf("archive: %s: record at byte %d is too short", path, off)
		}
		at, size := int(binary.BigEndian.Uint32(plain)), int(binary.BigEndian.Uint32(plain[4:]))
		if at != sd.Valid || at+size > len(sd.Data) {
			return nil, fmt.Errorf("archive: %s: record at byte %d covers %d+%d, expected to continue at %d", path, off, at, size, sd.Valid)
		}
		out, err := dec.DecodeAll(plain[8:], sd.Data[at:at:at+size])
		if err != nil || len(out) != size {
			return nil, fmt.Errorf("archive: %s: record at byte %d does not decompress: %v", path, off, err)
		}
		sd.Valid += size
		off += 4 + n
	}
	return sd, nil
}

// ReadHistory decrypts a timeline history file.
func (r *Repo) ReadHistory(tli uint32, ids []age.Identity) ([]byte, error) {
	raw, err := os.ReadFile(r.historyPath(tli))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("archive: history of timeline %d: %w", tli, ErrNoSegment)
	}
	if err != nil {
		return nil, err
	}
	return openBytes(raw, ids, false)
}

// OpenFile decrypts a stored backup file for reading.
func (r *Repo) OpenFile(b *Backup, f StoredFile, ids []age.Identity) (io.ReadCloser, error) {
	fh, err := os.Open(r.backupPath(b, f))
	if err != nil {
		return nil, fmt.Errorf("archive: backup %s: %w", b.ID, err)
	}
	o, err := open(fh, ids, isCompressed(f))
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("archive: backup %s: %s: %w", b.ID, f.Name, err)
	}
	return readCloser{o, func() error { o.Close(); return fh.Close() }}, nil
}

// isCompressed reports whether the plaintext of a stored file is zstd: the
// server compressed it, or the repository did.
func isCompressed(f StoredFile) bool { return bytes.HasSuffix([]byte(f.Name), []byte(".zst.age")) }

func (r *Repo) backupPath(b *Backup, f StoredFile) string {
	return r.Dir + "/backups/" + b.ID + "/" + f.Name
}

type readCloser struct {
	io.Reader
	close func() error
}

func (rc readCloser) Close() error { return rc.close() }
