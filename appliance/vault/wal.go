package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// ageMagic starts every age file: the one thing about a sealed record the
// vault can check without the key.
var ageMagic = []byte("age-encryption.org/v1\n")

// maxHistory bounds a sealed timeline history file: PostgreSQL's are a line
// per earlier timeline.
const maxHistory = 1 << 20

func (v *Vault) getWAL(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	b, err := v.ownRepo(c)
	if err != nil {
		return action{name: "wal.position"}, err
	}
	b.mu.Lock()
	pos := b.position()
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, pos)
	return action{name: "wal.position", target: pos.Durable.String()}, nil
}

// beginWAL starts a streaming session at a segment boundary: restreaming
// the segment being filled, continuing at the next one, starting afresh
// after a gap (recorded by a session marker, which splits the recoverable
// window), or on a later timeline whose history is stored.
func (v *Vault) beginWAL(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	act := action{name: "wal.begin"}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	q := r.URL.Query()
	tli, err1 := strconv.ParseUint(q.Get("tli"), 10, 32)
	lsn, err2 := strconv.ParseUint(q.Get("lsn"), 10, 64)
	act.target = fmt.Sprintf("timeline %d at %s", tli, archive.LSN(lsn))
	b.mu.Lock()
	defer b.mu.Unlock()
	size := b.repo.Info.SegmentSize
	if err1 != nil || err2 != nil || tli == 0 || lsn%size != 0 {
		return act, problem("malformed", "begin needs tli>0 and an lsn at a segment boundary; got tli=%q lsn=%q", q.Get("tli"), q.Get("lsn"))
	}
	seg := lsn / size
	next := walPos{tli: uint32(tli), seg: seg, begun: true}
	switch {
	case !b.have:
	case uint32(tli) < b.cur.tli:
		return act, b.gap("timeline %d is older than the stored timeline %d", tli, b.cur.tli)
	case uint32(tli) > b.cur.tli:
		if _, err := b.root.Stat(inRepo(archive.HistoryFile(uint32(tli)))); err != nil {
			return act, b.gap("timeline %d begins before its history file was stored; send the history first", tli)
		}
	case seg < b.cur.seg:
		return act, b.replayed("segment %X is before the stored WAL's end %s; resume at the vault's position", seg, b.durable())
	case seg == b.cur.seg:
		next.fill = b.cur.fill // the box restreams the segment; it sends only what is new
	}
	if err := b.writeFile(inRepo(archive.WALFile(size, uint32(tli), seg, archive.WALStart)), nil); err != nil {
		return act, err
	}
	if next.fill == 0 {
		idx, err := b.readIndex(next.tli, next.seg)
		if err != nil {
			return act, err
		}
		next.fill = idx.raw
	}
	b.cur, b.have = next, true
	writeJSON(w, http.StatusOK, b.position())
	return act, nil
}

// putRecord appends one sealed record to a segment's partial file, after
// checking that its offsets continue the stored WAL exactly and that it is
// framed as the repository format frames records.
func (v *Vault) putRecord(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	act := action{name: "wal.record", quiet: true}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	q := r.URL.Query()
	tli, e1 := strconv.ParseUint(q.Get("tli"), 10, 32)
	seg, e2 := strconv.ParseUint(q.Get("seg"), 10, 64)
	off, e3 := strconv.ParseUint(q.Get("offset"), 10, 32)
	n, e4 := strconv.ParseUint(q.Get("length"), 10, 32)
	act.target = fmt.Sprintf("timeline %d segment %X [%d, %d)", tli, seg, off, off+n)
	b.mu.Lock()
	size := b.repo.Info.SegmentSize
	b.mu.Unlock()
	if e1 != nil || e2 != nil || e3 != nil || e4 != nil || n == 0 || off+n > size {
		return act, problem("malformed", "record needs tli, seg, offset and length within one segment; got %s", r.URL.RawQuery)
	}
	if r.ContentLength > int64(maxRecord(n)) {
		return act, problem("malformed", "record of %d WAL bytes is %d bytes sealed, more than any sealing makes", n, r.ContentLength)
	}
	body, err := b.spool(r.Body, int64(maxRecord(n)))
	if errors.Is(err, errTooBig) {
		return act, problem("malformed", "record of %d WAL bytes is longer sealed than any sealing makes", n)
	}
	if err != nil {
		return act, err
	}
	defer body.close()
	if err := checkRecord(body, n); err != nil {
		return act, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.follows(uint32(tli), seg, int(off), int(n)); err != nil {
		return act, err
	}
	if err := b.fits(body.size + indexEntry); err != nil {
		return act, err
	}
	if err := v.appendAcked(r.Context(), b, body, int(off), int(n)); err != nil {
		return act, err
	}
	b.node = c.peer.Node
	b.lastWAL = v.cfg.Now()
	b.repo.SetWALState(archive.WALState{Timeline: b.cur.tli, Flushed: b.durable(), Time: b.lastWAL.UTC()})
	writeJSON(w, http.StatusOK, b.position())
	return act, nil
}

// maxRecord bounds a sealed record of n WAL bytes: zstd's worst case, an
// age header for a handful of recipients, and the payload's tags.
func maxRecord(n uint64) uint64 { return n + n/64 + 16<<10 }

// checkRecord checks a spooled record's framing: its length prefix and
// the age header that must follow it.
func checkRecord(body *spooled, n uint64) error {
	head := make([]byte, 4+len(ageMagic))
	switch {
	case body.size < int64(len(head)):
		return problem("malformed", "record is %d bytes, too short to be sealed", body.size)
	case uint64(body.size) > maxRecord(n):
		return problem("malformed", "record of %d WAL bytes is %d bytes sealed, more than any sealing makes", n, body.size)
	}
	if _, err := body.f.ReadAt(head, 0); err != nil {
		return fmt.Errorf("vault: read spooled record: %w", err)
	}
	switch {
	case int64(binary.BigEndian.Uint32(head)) != body.size-4:
		return problem("malformed", "record's length prefix says %d bytes but %d follow", binary.BigEndian.Uint32(head), body.size-4)
	case !bytes.HasPrefix(head[4:], ageMagic):
		return problem("malformed", "record is not an age file; the vault stores only sealed WAL")
	}
	return nil
}

// follows checks that a record continues the stored WAL exactly.
func (b *box) follows(tli uint32, seg uint64, off, n int) error {
	if !b.have {
		return b.gap("no streaming session began; begin one first")
	}
	at := func(t uint32, s uint64, o int) string {
		return fmt.Sprintf("timeline %d segment %X offset %d", t, s, o)
	}
	c := b.cur
	if tli == c.tli && seg == c.seg && off == c.fill {
		return nil
	}
	behind := tli < c.tli || (tli == c.tli && (seg < c.seg || (seg == c.seg && off+n <= c.fill)))
	if behind {
		return b.replayed("%s is already stored (stored WAL ends at %s)", at(tli, seg, off+n), at(c.tli, c.seg, c.fill))
	}
	if tli == c.tli && seg == c.seg && off < c.fill {
		p := b.position()
		return &problemError{wire.Problem{Code: "overlap", Position: &p, Error: "vault: " + fmt.Sprintf("%s overlaps the stored WAL, which ends at %s; resume at the vault's position",
			at(tli, seg, off), at(c.tli, c.seg, c.fill))}}
	}
	return b.gap("%s does not continue the stored WAL, which ends at %s", at(tli, seg, off), at(c.tli, c.seg, c.fill))
}

func (b *box) appendRecord(body *spooled, off, n int) error {
	size := b.repo.Info.SegmentSize
	rel := inRepo(archive.WALFile(size, b.cur.tli, b.cur.seg, archive.WALPartial))
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if off == 0 {
		flags |= os.O_TRUNC // a partial file with nothing acknowledged
	}
	if err := b.appendSync(rel, flags, body.reader(), body.size); err != nil {
		return err
	}
	if err := b.root.MkdirAll(indexDir, 0o755); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	var e [indexEntry]byte
	binary.BigEndian.PutUint32(e[0:], uint32(off))
	binary.BigEndian.PutUint32(e[4:], uint32(n))
	binary.BigEndian.PutUint32(e[8:], uint32(body.size))
	if err := b.appendSync(indexRel(b.cur.tli, b.cur.seg), flags, bytes.NewReader(e[:]), indexEntry); err != nil {
		return err
	}
	b.cur.fill += n
	if b.cur.fill == int(size) {
		b.cur = walPos{tli: b.cur.tli, seg: b.cur.seg + 1, begun: true}
	}
	return nil
}

// putHistory stores a sealed timeline history file. Histories never change;
// a second copy of a stored one is accepted and ignored.
func (v *Vault) putHistory(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	act := action{name: "wal.history"}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	tli, err := strconv.ParseUint(r.PathValue("tli"), 10, 32)
	act.target = "timeline " + r.PathValue("tli")
	if err != nil || tli < 2 {
		return act, problem("malformed", "history needs a timeline of 2 or more, not %q", r.PathValue("tli"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHistory+1))
	if err != nil || len(body) > maxHistory || !bytes.HasPrefix(body, ageMagic) {
		return act, problem("malformed", "history of timeline %d is not an age file of at most 1 MiB", tli)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rel := inRepo(archive.HistoryFile(uint32(tli)))
	if _, err := b.root.Stat(rel); err == nil {
		writeJSON(w, http.StatusOK, b.position())
		return act, nil
	}
	if err := b.fits(int64(len(body))); err != nil {
		return act, err
	}
	if err := b.writeFile(rel, body); err != nil {
		return act, err
	}
	writeJSON(w, http.StatusOK, b.position())
	return act, nil
}

func (b *box) gap(format string, args ...any) error {
	p := b.position()
	return &problemError{wire.Problem{Code: "gap", Error: "vault: " + fmt.Sprintf(format, args...), Position: &p}}
}

func (b *box) replayed(format string, args ...any) error {
	p := b.position()
	return &problemError{wire.Problem{Code: "replayed", Error: "vault: " + fmt.Sprintf(format, args...), Position: &p}}
}
