package archive

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// A delta is one archive of an incremental backup: the server's tar with
// each regular file's blocks either copied from the same file of the parent
// backup (when the block map says the parent's block there is the same)
// or given literally. Its plaintext is "CBD1" and operations:
//
//	'T' n bytes   tar bytes that are not file data (headers, padding, end)
//	'F' path      a regular file's data begins; blocks count from 0
//	'C' n         the next n blocks are the parent's blocks at the same place
//	'L' n bytes   the next bytes of the file, literally
//	'E'           the end of the archive
//
// n and lengths are uvarints, path is a uvarint length and its bytes.
const (
	deltaMagic = "CBD1"
	opMeta     = 'T'
	opFile     = 'F'
	opCopy     = 'C'
	opLit      = 'L'
	opEnd      = 'E'
	// maxDeltaOp bounds one literal or meta operation a reader accepts.
	maxDeltaOp = 1 << 20
	// DeltaSuffix ends the archive name of a delta ("base.tar.delta").
	DeltaSuffix = ".delta"
)

// DeltaStats says what a delta holds.
type DeltaStats struct {
	Files  int   // regular files
	Blocks int64 // blocks of them
	Sent   int64 // blocks given literally
	Bytes  int64 // file bytes given literally
}

// Add adds o to s.
func (s *DeltaStats) Add(o DeltaStats) {
	s.Files += o.Files
	s.Blocks += o.Blocks
	s.Sent += o.Sent
	s.Bytes += o.Bytes
}

// deltaBuilder writes one archive's delta.
type deltaBuilder struct {
	w        *bufio.Writer
	archive  string
	prefix   string // the archive's place in the manifest's names
	parent   *BlockMap
	child    *BlockMap
	manifest map[string]ManifestFile
	seen     map[string]bool
	meta     []byte
	lit      []byte
	run      uint64
	stats    DeltaStats
}

// buildDelta writes the delta of the tar in rd against parent (nil: every
// block literal) to out, adds the archive's files to child, and checks
// every file against the manifest (size and checksum), recording it in seen.
func buildDelta(rd io.Reader, out io.Writer, b *deltaBuilder) error {
	b.w = bufio.NewWriterSize(out, 1<<16)
	b.w.WriteString(deltaMagic)
	err := walkRawTar(rd, tarVisitor{
		meta: func(p []byte) error { b.meta = append(b.meta, p...); return nil },
		file: b.file,
	})
	if err != nil {
		return err
	}
	b.flushMeta()
	b.w.WriteByte(opEnd)
	return b.w.Flush()
}

func (b *deltaBuilder) file(path string, size int64, body io.Reader) error {
	b.flushMeta()
	b.w.WriteByte(opFile)
	putString(b.w, path)
	name := b.prefix + strings.TrimPrefix(path, "./")
	mf, ok := b.manifest[name]
	if !ok {
		return fmt.Errorf("%s is in the archive but not in the backup manifest", name)
	}
	b.seen[name] = true
	sum, format, err := newChecksum(mf.Algorithm)
	if err != nil {
		return err
	}
	pf := b.parent.Lookup(b.archive, path)
	cf := MapFile{Archive: b.archive, Path: path, Size: size, Hashes: make([]byte, 0, blocksOf(size)*blockHashLen)}
	if err := b.blocks(body, pf, &cf, sum); err != nil {
		return err
	}
	b.flushRun()
	b.flushLit()
	b.child.Files = append(b.child.Files, cf)
	b.stats.Files++
	if size != mf.Size {
		return fmt.Errorf("%s has %d bytes; the backup manifest says %d", name, size, mf.Size)
	}
	if sum != nil && !strings.EqualFold(format(sum.Sum(nil)), mf.Checksum) {
		return fmt.Errorf("%s does not match its checksum in the backup manifest", name)
	}
	return nil
}

// blocks hashes each block of a file and sends it as a copy when the
// parent has the same block at the same place.
func (b *deltaBuilder) blocks(body io.Reader, pf, cf *MapFile, sum hash.Hash) error {
	buf := make([]byte, BlockSize)
	for j := 0; ; j++ {
		n, err := io.ReadFull(body, buf)
		if n == 0 {
			if err == io.EOF {
				return nil
			}
			return err
		}
		blk := buf[:n]
		h := blockHash(blk)
		cf.Hashes = append(cf.Hashes, h[:]...)
		if sum != nil {
			sum.Write(blk)
		}
		b.stats.Blocks++
		if pf != nil && j < pf.Blocks() && bytes.Equal(pf.hash(j), h[:]) {
			b.flushLit()
			b.run++
			continue
		}
		b.flushRun()
		b.lit = append(b.lit, blk...)
		b.stats.Sent++
		b.stats.Bytes += int64(n)
		if len(b.lit) >= maxDeltaOp/2 {
			b.flushLit()
		}
	}
}

func (b *deltaBuilder) flushMeta() {
	for len(b.meta) > 0 {
		k := min(len(b.meta), maxDeltaOp)
		b.w.WriteByte(opMeta)
		putUvarint(b.w, uint64(k))
		b.w.Write(b.meta[:k])
		b.meta = b.meta[k:]
	}
	b.meta = b.meta[:0]
}

func (b *deltaBuilder) flushLit() {
	if len(b.lit) == 0 {
		return
	}
	b.w.WriteByte(opLit)
	putUvarint(b.w, uint64(len(b.lit)))
	b.w.Write(b.lit)
	b.lit = b.lit[:0]
}

func (b *deltaBuilder) flushRun() {
	if b.run == 0 {
		return
	}
	b.w.WriteByte(opCopy)
	putUvarint(b.w, b.run)
	b.run = 0
}

// deltaSink receives what a delta rebuilds: tar bytes that are not file
// data, and each file's data between begin and end.
type deltaSink interface {
	meta(p []byte) error
	begin(path string) error
	data(p []byte) error
	end() error
}

// blockSource gives the parent's blocks of a file.
type blockSource interface {
	// block reads block i of path into p and returns its length.
	block(path string, i int64, p []byte) (int, error)
}

// applyDelta rebuilds an archive from a delta and the parent's blocks.
func applyDelta(rd io.Reader, parent blockSource, sink deltaSink) error {
	br := bufio.NewReaderSize(rd, 1<<16)
	magic := make([]byte, len(deltaMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != deltaMagic {
		return errors.New("delta: not a delta archive")
	}
	a := &applier{br: br, parent: parent, sink: sink, buf: make([]byte, maxDeltaOp)}
	for {
		op, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("delta: cut short: %w", err)
		}
		if op == opEnd {
			return a.endFile()
		}
		if err := a.op(op); err != nil {
			return err
		}
	}
}

type applier struct {
	br     *bufio.Reader
	parent blockSource
	sink   deltaSink
	buf    []byte
	path   string // the file being rebuilt, "" between files
	block  int64  // its next block
	inFile bool
}

func (a *applier) op(op byte) error {
	switch op {
	case opMeta:
		if err := a.endFile(); err != nil {
			return err
		}
		p, err := a.bytes()
		if err != nil {
			return err
		}
		return a.sink.meta(p)
	case opFile:
		if err := a.endFile(); err != nil {
			return err
		}
		n, err := binary.ReadUvarint(a.br)
		if err != nil || n == 0 || n > maxMapPath {
			return errors.New("delta: bad file name")
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(a.br, name); err != nil {
			return fmt.Errorf("delta: %w", err)
		}
		a.path, a.block, a.inFile = string(name), 0, true
		return a.sink.begin(a.path)
	case opCopy:
		return a.copyBlocks()
	case opLit:
		return a.literal()
	}
	return fmt.Errorf("delta: unknown operation %q", op)
}

func (a *applier) endFile() error {
	if !a.inFile {
		return nil
	}
	a.inFile = false
	return a.sink.end()
}

// bytes reads a length and that many bytes into a.buf.
func (a *applier) bytes() ([]byte, error) {
	n, err := binary.ReadUvarint(a.br)
	if err != nil || n > maxDeltaOp {
		return nil, errors.New("delta: bad length")
	}
	if _, err := io.ReadFull(a.br, a.buf[:n]); err != nil {
		return nil, fmt.Errorf("delta: cut short: %w", err)
	}
	return a.buf[:n], nil
}

func (a *applier) literal() error {
	if !a.inFile {
		return errors.New("delta: file data outside a file")
	}
	p, err := a.bytes()
	if err != nil {
		return err
	}
	if len(p)%BlockSize != 0 {
		// Only a file's last block is short; what follows must be a new file.
		defer func() { a.block = -1 << 40 }()
	}
	a.block += int64((len(p) + BlockSize - 1) / BlockSize)
	return a.sink.data(p)
}

func (a *applier) copyBlocks() error {
	n, err := binary.ReadUvarint(a.br)
	if !a.inFile || err != nil || n > maxEntrySize/BlockSize || a.block < 0 {
		return errors.New("delta: bad copy")
	}
	blk := a.buf[:BlockSize]
	for range n {
		k, err := a.parent.block(a.path, a.block, blk)
		if err != nil {
			return fmt.Errorf("delta: %s block %d from the parent backup: %w", a.path, a.block, err)
		}
		if err := a.sink.data(blk[:k]); err != nil {
			return err
		}
		a.block++
		if k < BlockSize {
			a.block = -1 << 40
		}
	}
	return nil
}
