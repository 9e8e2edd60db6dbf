package vault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// box is one namespace: a box's repository and where its WAL stands.
type box struct {
	ns  string
	dir string // boxes/NS
	// root is dir, opened once: every file the vault writes for the box
	// goes through it.
	root  *os.Root
	quota int64 // Limits.Quota

	// mu serializes every change to the namespace: WAL arrives in order,
	// one record at a time.
	mu      sync.Mutex
	repo    *archive.Repo // nil until the box created its repository
	node    string        // the box's name when it last wrote
	cur     walPos        // where the next record must start
	have    bool          // cur is known (WAL was stored or a session began)
	lastWAL time.Time
	used    int64 // bytes the namespace holds; see measure
	// pruned lists what retention removed (backups/ID, WAL segment paths)
	// that the bucket may still hold; Offload removes it there. It is
	// kept only with a bucket, and in memory: a restart in between leaves
	// those objects in the bucket, never removes more.
	pruned []string
	// trim names the segment whose batches from trimAt on the bucket may
	// hold though the journal does not: a record cut off after its flush
	// failed, which may have been stored all the same. The next record
	// trims them before it is flushed.
	trim   string
	trimAt int64
	// evicted holds the files Evict removed from the directory, which the
	// bucket holds (see evict.go); nil until loaded.
	evicted map[string]evictedFile
}

// walPos is the next WAL byte the vault expects.
type walPos struct {
	tli   uint32
	seg   uint64
	fill  int // bytes of seg already stored
	begun bool
}

func (b *box) repoDir() string { return filepath.Join(b.dir, "repo") }

// indexDir holds the partial segments' indexes, in the namespace
// directory.
const indexDir = "index"

// getBox returns the namespace, loading its state on first use.
func (v *Vault) getBox(ns string) (*box, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b := v.boxes[ns]; b != nil {
		return b, nil
	}
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	b := &box{ns: ns, dir: filepath.Join(v.cfg.Dir, "boxes", ns), quota: v.cfg.Limits.Quota}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, fmt.Errorf("vault: namespace %s: %w", ns, err)
	}
	root, err := os.OpenRoot(b.dir)
	if err != nil {
		return nil, fmt.Errorf("vault: namespace %s: %w", ns, err)
	}
	b.root = root
	if err := b.measure(); err != nil {
		root.Close()
		return nil, err
	}
	if r, err := archive.Open(b.repoDir()); err == nil {
		b.repo = r
		if err := b.load(); err != nil {
			root.Close()
			return nil, err
		}
	} else if !errors.Is(err, archive.ErrNotRepo) {
		root.Close()
		return nil, err
	}
	v.boxes[ns] = b
	return b, nil
}

// durable is the end of durable WAL.
func (b *box) durable() archive.LSN {
	return archive.LSN(b.cur.seg*b.repo.Info.SegmentSize + uint64(b.cur.fill))
}

func (b *box) position() wire.Position {
	if b.repo == nil || !b.have {
		return wire.Position{}
	}
	return wire.Position{Exists: true, Timeline: b.cur.tli, Durable: b.durable()}
}

// load finds where stored WAL ends: the highest segment of the highest
// timeline, and how much of it the index says is durable. A record the
// vault wrote but never acknowledged (a crash between data and index) is
// cut off.
func (b *box) load() error {
	tls, err := b.repo.Timelines()
	if err != nil {
		return err
	}
	b.findEnd(tls)
	if !b.have {
		return nil
	}
	idx, err := b.readIndex(b.cur.tli, b.cur.seg)
	if err != nil {
		return err
	}
	if err := b.cutTornIndex(); err != nil {
		return err
	}
	b.cur.fill = idx.raw
	if b.cur.fill == int(b.repo.Info.SegmentSize) {
		b.cur = walPos{tli: b.cur.tli, seg: b.cur.seg + 1}
		return nil
	}
	return b.cutUnacknowledged(idx)
}

// findEnd sets the current position to the segment after the highest
// complete segment of the highest timeline, or to the highest partial one.
func (b *box) findEnd(tls []*archive.Timeline) {
	for _, tl := range tls {
		for _, s := range tl.Segments {
			if !b.have || tl.TLI > b.cur.tli || (tl.TLI == b.cur.tli && s.SegNo >= b.cur.seg) {
				b.cur, b.have = walPos{tli: tl.TLI, seg: s.SegNo}, true
				if !s.Partial {
					b.cur.seg++
				}
			}
		}
	}
}

// cutTornIndex cuts a torn last entry off the current segment's index.
func (b *box) cutTornIndex() error {
	path := b.indexPath(b.cur.tli, b.cur.seg)
	if fi, err := os.Stat(path); err == nil && fi.Size()%indexEntry != 0 {
		if err := os.Truncate(path, fi.Size()-fi.Size()%indexEntry); err != nil {
			return fmt.Errorf("vault: cut a torn index entry: %w", err)
		}
	}
	return nil
}

// cutUnacknowledged cuts the current partial segment back to what its
// index acknowledges; a file shorter than that has lost acknowledged data.
func (b *box) cutUnacknowledged(idx indexSum) error {
	path := filepath.Join(b.repo.Dir, archive.WALFile(b.repo.Info.SegmentSize, b.cur.tli, b.cur.seg, archive.WALPartial))
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil
	case fi.Size() > idx.stored:
		if err := os.Truncate(path, idx.stored); err != nil {
			return fmt.Errorf("vault: cut an unacknowledged record: %w", err)
		}
	case fi.Size() < idx.stored:
		return fmt.Errorf("vault: %s is shorter (%d bytes) than its index says (%d): the disk lost acknowledged data", path, fi.Size(), idx.stored)
	}
	return nil
}

// The index of a partial segment records each stored record as three
// big-endian uint32s: offset in the segment, raw WAL length, stored
// length. It lives outside the repository (the repository holds only its
// own format) and is what lets the vault check offsets without the key.
const indexEntry = 12

type indexSum struct {
	raw    int   // WAL bytes covered, from offset 0
	stored int64 // bytes of the partial file
}

// indexRel is a segment's index, relative to the namespace directory.
func indexRel(tli uint32, seg uint64) string {
	return filepath.Join(indexDir, fmt.Sprintf("%08X-%016X.idx", tli, seg))
}

func (b *box) indexPath(tli uint32, seg uint64) string {
	return filepath.Join(b.dir, indexRel(tli, seg))
}

func (b *box) readIndex(tli uint32, seg uint64) (indexSum, error) {
	raw, err := os.ReadFile(b.indexPath(tli, seg))
	if errors.Is(err, os.ErrNotExist) {
		return indexSum{}, nil
	}
	if err != nil {
		return indexSum{}, fmt.Errorf("vault: %w", err)
	}
	var s indexSum
	for len(raw) >= indexEntry { // a torn last entry was never acknowledged
		off, n, st := binary.BigEndian.Uint32(raw), binary.BigEndian.Uint32(raw[4:]), binary.BigEndian.Uint32(raw[8:])
		if int(off) != s.raw {
			return s, fmt.Errorf("vault: index of segment %X on timeline %d does not chain at %d", seg, tli, off)
		}
		s.raw += int(n)
		s.stored += int64(st)
		raw = raw[indexEntry:]
	}
	return s, nil
}
