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
	// Unsigned is the note for WAL written before format 2, which nothing
	// proves the box wrote; empty when every byte was signed.
	Unsigned string
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
	f, err := openRegular(path)
	if err == nil {
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			z.Grow(int(st.Size())) // the plaintext is a little smaller: read it without regrowing
		}
		return r.readComplete(f, path, tli, segNo, ids, data, z)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ppath := r.segPath(tli, segNo, partialSuffix)
	// Records add a few hundred bytes each to what they hold; a file far
	// larger than its segment is not one the box wrote.
	raw, err := readBounded(ppath, 4*int64(r.Info.SegmentSize))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("archive: %s: %w", segName(tli, segNo, r.Info.SegmentSize), ErrNoSegment)
	}
	if err != nil {
		return nil, err
	}
	clear(data)
	return r.readPartial(raw, ppath, tli, segNo, ids, data)
}

// readComplete decrypts a complete segment and decodes its frames straight
// into data (a streaming decoder would copy every byte once more), checking
// the box's signature.
func (r *Repo) readComplete(f io.Reader, path string, tli uint32, segNo uint64, ids []age.Identity, data []byte, z *bytes.Buffer) (*SegmentData, error) {
	o, err := open(f, ids, false)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", path, err)
	}
	if _, err := z.ReadFrom(io.LimitReader(o, int64(len(data))*2+1<<20)); err != nil {
		return nil, fmt.Errorf("archive: %s is damaged or truncated: %w", path, err)
	}
	dec := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(dec)
	sd := &SegmentData{Data: data, Valid: len(data)}
	p := z.Bytes()
	if rest, stored, ok := cutMagic(p, magicWAL, magicWALDecoded); ok {
		n, err := r.decodeFrames(rest, data, walStatement{kind: sealKindSegment, tli: tli, segNo: segNo}, dec, stored)
		switch {
		case err != nil:
			return nil, fmt.Errorf("archive: %s: %w", path, err)
		case n != len(data):
			return nil, fmt.Errorf("archive: %s holds %d bytes, not a segment of %d", path, n, len(data))
		}
		return sd, nil
	}
	note, ok := r.unsignedOK(LSN(segNo * r.Info.SegmentSize))
	if !ok {
		return nil, fmt.Errorf("archive: %s: %w: it carries no signature, in a repository where the box signs everything", path, ErrForged)
	}
	sd.Unsigned = note
	out, err := dec.DecodeAll(p, data[:0])
	switch {
	case err != nil:
		return nil, fmt.Errorf("archive: %s is damaged or truncated: %w", path, err)
	case len(out) != len(data):
		return nil, fmt.Errorf("archive: %s holds %d bytes, not a segment of %d", path, len(out), len(data))
	case &out[0] != &data[0]:
		return nil, fmt.Errorf("archive: %s is longer than a segment", path)
	}
	return sd, nil
}

// readPartial reassembles a partial segment from its records. A torn last
// record (a crash during a flush that was never reported) is ignored; any
// other damage is an error.
func (r *Repo) readPartial(raw []byte, path string, tli uint32, segNo uint64, ids []age.Identity, data []byte) (*SegmentData, error) {
	sd := &SegmentData{Data: data, Partial: true}
	dec := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(dec)
	for off := 0; off < len(raw); {
		if len(raw)-off < 4 {
			break // torn length prefix
		}
		n := int(binary.BigEndian.Uint32(raw[off:]))
		if n > len(raw)-off-4 {
			break // torn record
		}
		plain, err := openBytes(raw[off+4:off+4+n], ids, false)
		if err != nil {
			return nil, fmt.Errorf("archive: %s: record at byte %d is damaged: %w", path, off, err)
		}
		if err := r.readRecord(plain, sd, tli, segNo, dec); err != nil {
			return nil, fmt.Errorf("archive: %s: record at byte %d: %w", path, off, err)
		}
		off += 4 + n
	}
	return sd, nil
}

// readRecord decodes one record's plaintext into sd: format 2 (signed) or
// format 1 (allowed only where the repository was unsigned).
func (r *Repo) readRecord(plain []byte, sd *SegmentData, tli uint32, segNo uint64, dec *zstd.Decoder) error {
	rest, stored, signed := cutMagic(plain, magicRecord, magicRecordDecoded)
	if signed {
		plain = rest
	}
	if len(plain) < 8 {
		return errors.New("it is too short")
	}
	at, size := int(binary.BigEndian.Uint32(plain)), int(binary.BigEndian.Uint32(plain[4:]))
	if at != sd.Valid || size > len(sd.Data)-at {
		return fmt.Errorf("it covers %d+%d, expected to continue at %d", at, size, sd.Valid)
	}
	if signed {
		want := walStatement{kind: sealKindRecord, tli: tli, segNo: segNo, offset: uint32(at)}
		n, err := r.decodeFrames(plain[8:], sd.Data[at:at+size], want, dec, stored)
		if err == nil && n != size {
			err = fmt.Errorf("it holds %d bytes, not %d", n, size)
		}
		if err != nil {
			return err
		}
		sd.Valid += size
		return nil
	}
	note, ok := r.unsignedOK(LSN(segNo*r.Info.SegmentSize + uint64(at)))
	if !ok {
		return fmt.Errorf("%w: it carries no signature, in a repository where the box signs everything", ErrForged)
	}
	sd.Unsigned = note
	out, err := dec.DecodeAll(plain[8:], sd.Data[at:at:at+size])
	if err != nil || len(out) != size {
		return fmt.Errorf("it does not decompress: %v", err)
	}
	sd.Valid += size
	return nil
}

// maxHistory bounds a timeline history file (a line per timeline switch).
const maxHistory = 1 << 20

// ReadHistory decrypts a timeline history file and checks its signature.
func (r *Repo) ReadHistory(tli uint32, ids []age.Identity) ([]byte, error) {
	raw, err := readBounded(r.historyPath(tli), 2*maxHistory)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("archive: history of timeline %d: %w", tli, ErrNoSegment)
	}
	if err != nil {
		return nil, err
	}
	plain, err := openBytes(raw, ids, false)
	if err != nil {
		return nil, err
	}
	if rest, stored, ok := cutMagic(plain, magicWAL, magicWALDecoded); ok {
		out := make([]byte, maxHistory)
		dec := decoders.Get().(*zstd.Decoder)
		defer decoders.Put(dec)
		n, err := r.decodeFrames(rest, out, walStatement{kind: sealKindHistory, tli: tli}, dec, stored)
		if err != nil {
			return nil, fmt.Errorf("archive: history of timeline %d: %w", tli, err)
		}
		return out[:n], nil
	}
	if _, ok := r.unsignedOK(0); !ok || r.Signed() && r.Info.SignedFrom == 0 {
		return nil, fmt.Errorf("archive: history of timeline %d: %w: it carries no signature", tli, ErrForged)
	}
	return plain, nil
}

// OpenFile decrypts a stored backup file for reading. In a signed backup
// every chunk is checked against the box's signature before it is read;
// call BackupStatement first for the note on an unsigned one.
func (r *Repo) OpenFile(b *Backup, f StoredFile, ids []age.Identity) (io.ReadCloser, error) {
	st, _, err := r.BackupStatement(b)
	if err != nil {
		return nil, err
	}
	var c *Content
	if st != nil {
		if c = st.content(f); c == nil {
			return nil, fmt.Errorf("archive: backup %s: %w: the box did not sign %s", b.ID, ErrForged, f.Name)
		}
	}
	fh, err := r.openStored(b, f)
	if err != nil {
		return nil, fmt.Errorf("archive: backup %s: %w", b.ID, err)
	}
	o, err := openChecked(fh, ids, isCompressed(f), c)
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
