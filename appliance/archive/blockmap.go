package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A block map records, for every regular file of a base backup's archives,
// a hash of each BlockSize bytes of it. The box keeps the map of the newest
// backup the vault holds (on /perm), and an incremental backup sends only
// the blocks whose hash differs from the map's at the same place of the
// same file: this catches every change, including those that leave a
// page's LSN alone (hint bits without data checksums, the visibility map,
// the free space map, a database recreated by FILE_COPY), which selecting
// pages by LSN would miss. An incremental backup stores its own map too
// (signed with it), so a replacement box can fetch it from the vault.
const (
	// BlockSize is PostgreSQL's page size: a change to one page costs one
	// block.
	BlockSize = 8192
	// blockHashLen bytes of SHA-256 name a block: a collision is as likely
	// as 2^-64 per changed block, and a restore still checks each file's
	// CRC32C against the backup manifest.
	blockHashLen = 16
	mapMagic     = "CBM1"
	// maxMapFile bounds a block map read from disk: 256 MiB describes a
	// 128 GiB data directory, far beyond a practice's database.
	maxMapFile = 256 << 20
	maxMapPath = 4096
)

// ErrBlockMap means a block map is damaged: its own checksum, or the one
// the box signed for it, does not match. The box takes a fresh full
// backup instead of building on it.
var ErrBlockMap = errors.New("archive: block map damaged")

// BlockMap is the block map of one backup.
type BlockMap struct {
	Backup string    // the backup it describes
	Files  []MapFile // in the order of the archives
	index  map[mapKey]int
}

// MapFile is one regular file of a backup.
type MapFile struct {
	Archive string // the archive it is in ("base.tar", "16385.tar")
	Path    string // its name in the archive
	Size    int64
	Hashes  []byte // blockHashLen bytes for each block
}

type mapKey struct{ archive, path string }

// Blocks is the number of blocks of the file.
func (f *MapFile) Blocks() int { return len(f.Hashes) / blockHashLen }

// hash returns block i's hash.
func (f *MapFile) hash(i int) []byte { return f.Hashes[i*blockHashLen : (i+1)*blockHashLen] }

// blockHash is the hash of one block's bytes.
func blockHash(p []byte) [blockHashLen]byte {
	s := sha256.Sum256(p)
	return [blockHashLen]byte(s[:blockHashLen])
}

// Lookup returns the file at path in archive, or nil.
func (m *BlockMap) Lookup(archive, path string) *MapFile {
	if m == nil {
		return nil
	}
	if m.index == nil {
		m.index = make(map[mapKey]int, len(m.Files))
		for i, f := range m.Files {
			m.index[mapKey{f.Archive, f.Path}] = i
		}
	}
	i, ok := m.index[mapKey{archive, path}]
	if !ok {
		return nil
	}
	return &m.Files[i]
}

// Blocks is the number of blocks the map describes.
func (m *BlockMap) Blocks() int64 {
	var n int64
	for i := range m.Files {
		n += int64(m.Files[i].Blocks())
	}
	return n
}

// Encode is the map's stored form: "CBM1", the backup, the files (each
// its archive, path, size and hashes, lengths as uvarints), and the
// SHA-256 of everything before it.
func (m *BlockMap) Encode(w io.Writer) error {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<16)
	bw.WriteString(mapMagic)
	putString(bw, m.Backup)
	putUvarint(bw, uint64(len(m.Files)))
	for _, f := range m.Files {
		putString(bw, f.Archive)
		putString(bw, f.Path)
		putUvarint(bw, uint64(f.Size))
		bw.Write(f.Hashes)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(h.Sum(nil))
	return err
}

// DecodeBlockMap reads a stored block map, checking its own checksum
// before anything in it is used.
func DecodeBlockMap(data []byte) (*BlockMap, error) {
	if len(data) < len(mapMagic)+sha256.Size || string(data[:len(mapMagic)]) != mapMagic {
		return nil, fmt.Errorf("%w: not a block map", ErrBlockMap)
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, fmt.Errorf("%w: its checksum does not match its contents", ErrBlockMap)
	}
	r := bytes.NewReader(body[len(mapMagic):])
	m := &BlockMap{}
	var err error
	if m.Backup, err = getString(r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBlockMap, err)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) {
		return nil, fmt.Errorf("%w: bad file count", ErrBlockMap)
	}
	m.Files = make([]MapFile, 0, n)
	for range n {
		f, err := getMapFile(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBlockMap, err)
		}
		m.Files = append(m.Files, f)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after its last file", ErrBlockMap, r.Len())
	}
	return m, nil
}

func getMapFile(r *bytes.Reader) (MapFile, error) {
	var f MapFile
	var err error
	if f.Archive, err = getString(r); err != nil {
		return f, err
	}
	if f.Path, err = getString(r); err != nil {
		return f, err
	}
	size, err := binary.ReadUvarint(r)
	if err != nil || size > maxEntrySize {
		return f, fmt.Errorf("%s: bad size", f.Path)
	}
	f.Size = int64(size)
	n := blocksOf(f.Size) * blockHashLen
	if n > r.Len() {
		return f, fmt.Errorf("%s: hashes cut short", f.Path)
	}
	f.Hashes = make([]byte, n)
	_, err = io.ReadFull(r, f.Hashes)
	return f, err
}

// blocksOf is the number of blocks of a file of size bytes.
func blocksOf(size int64) int { return int((size + BlockSize - 1) / BlockSize) }

func putUvarint(w *bufio.Writer, v uint64) {
	var b [binary.MaxVarintLen64]byte
	w.Write(b[:binary.PutUvarint(b[:], v)])
}

func putString(w *bufio.Writer, s string) {
	putUvarint(w, uint64(len(s)))
	w.WriteString(s)
}

func getString(r *bytes.Reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxMapPath || n > uint64(r.Len()) {
		return "", errors.New("bad string length")
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return string(b), err
}
