package restore

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/jackc/pglogrepl"
)

// A restore reads the WAL it will replay for CREATE TABLESPACE records
// before recovery starts (walscan.go). WAL that reaches the repository
// afterwards (a standby that follows it, a restore from a drive that is
// still streaming) was never read that way; Guard carries what the
// restore's scan covered to wal-fetch and the prefetcher, which read every
// segment they serve beyond it the same way and refuse one that creates a
// tablespace outside the data directory that nobody mapped: PostgreSQL 15
// replays such a record by removing whatever is at the location's version
// directory and making it anew, a live tablespace included.

// Guard is what wal-fetch needs to serve a segment safely.
type Guard struct {
	// Mapped lists the CREATE TABLESPACE records the restore mapped: they
	// are served as no-ops (MapTablespaceRecords).
	Mapped []archive.LSN
	// From is the backup's start (records before it are not replayed),
	// Checked where the restore's scan stopped being sure (zero: no WAL
	// is checked, as in restores made before the guard), and To a target
	// LSN after which nothing is replayed (zero: none).
	From, Checked, To archive.LSN
}

// guardMargin is how far before the end of the WAL the restore saw a
// tablespace record may begin and still have been cut off there: the
// record's largest size and the page headers it may span.
const guardMargin = maxTablespaceRecord + 2*longPageHeader

// newGuard is the guard for a restore of b whose scan read the WAL up to
// the window's end.
func newGuard(b *archive.Backup, w archive.Window, t Target, ps []Placement) Guard {
	g := Guard{From: b.StartLSN, To: t.LSN, Checked: max(b.StartLSN, w.To-min(w.To, guardMargin))}
	for _, p := range ps {
		if p.Record != 0 {
			g.Mapped = append(g.Mapped, p.Record)
		}
	}
	return g
}

// Flags are wal-fetch's (and wal-prefetch's) options for g, each with a
// leading space; "" for the zero guard.
func (g Guard) Flags() string {
	var s string
	if len(g.Mapped) > 0 {
		lsns := make([]string, len(g.Mapped))
		for i, l := range g.Mapped {
			lsns[i] = l.String()
		}
		s = " --mapped-tablespaces " + strings.Join(lsns, ",")
	}
	if g.Checked != 0 {
		s += fmt.Sprintf(" --checked-wal %s,%s,%s", g.From, g.Checked, g.To)
	}
	return s
}

// ParseGuard reads the values of --mapped-tablespaces (LSN,...) and
// --checked-wal (FROM,CHECKED,TO).
func ParseGuard(mapped, checked string) (Guard, error) {
	var g Guard
	var err error
	if g.Mapped, err = parseLSNList(mapped); err != nil {
		return g, fmt.Errorf("--mapped-tablespaces: %w", err)
	}
	c, err := parseLSNList(checked)
	switch {
	case err != nil:
		return g, fmt.Errorf("--checked-wal: %w", err)
	case len(c) == 3:
		g.From, g.Checked, g.To = c[0], c[1], c[2]
	case len(c) != 0:
		return g, fmt.Errorf("--checked-wal: %q is not FROM,CHECKED,TO", checked)
	}
	return g, nil
}

func parseLSNList(s string) ([]archive.LSN, error) {
	var out []archive.LSN
	for f := range strings.SplitSeq(s, ",") {
		if f == "" {
			continue
		}
		l, err := pglogrepl.ParseLSN(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a WAL position", f)
		}
		out = append(out, l)
	}
	return out, nil
}

// Serve makes the segment at path, just fetched from repo, safe to
// replay into the data directory pgdata: mapped records become no-ops, and
// a segment beyond what the restore checked that creates a tablespace
// outside pgdata without a mapping is refused (ErrTablespaceOutside).
func (g Guard) Serve(repo *archive.Repo, ids []age.Identity, tli uint32, segNo uint64, path, pgdata string) error {
	size := repo.Info.SegmentSize
	start := archive.LSN(segNo * size)
	if err := MapTablespaceRecords(path, start, size, g.Mapped); err != nil {
		return err
	}
	if g.Checked == 0 || start+archive.LSN(size) <= g.Checked {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := &walScan{from: max(g.From, g.Checked), to: g.To}
	// A record that begins in the segment before and ends in this one is
	// read whole only with the end of that segment, which is decrypted
	// only when this segment's first page says it continues a record. (The segment before a
	// timeline's first is its parent's; a tablespace record cut by the
	// switch is not replayed on the new timeline.)
	if segNo > 0 && beginsMidRecord(data) {
		if prev, err := repo.ReadSegment(tli, segNo-1, ids); err == nil && !prev.Partial {
			if err := s.segment(start-archive.LSN(size), prev.Data[:prev.Valid]); err != nil {
				return err
			}
		}
	}
	if s.ended {
		*s = walScan{from: s.from, to: s.to, found: s.found}
	}
	if err := s.segment(start, data); err != nil {
		return err
	}
	return g.refuse(s.found, pgdata)
}

// beginsMidRecord reports whether a segment's first page continues a
// record from the segment before: only then is that segment worth
// decrypting to read the record whole.
func beginsMidRecord(data []byte) bool {
	return len(data) >= longPageHeader && binary.LittleEndian.Uint16(data[2:])&pageContRecord != 0
}

// refuse names the tablespaces created outside pgdata that no mapping
// covers.
func (g Guard) refuse(found []tablespaceCreate, pgdata string) error {
	var outside []string
	for _, c := range found {
		if !slices.Contains(g.Mapped, c.LSN) && !inside(pgdata, c.Location) {
			outside = append(outside, describeOutside(c))
		}
	}
	if len(outside) == 0 {
		return nil
	}
	return fmt.Errorf("restore: %w, in WAL that arrived after the restore checked it; nothing of it was replayed. Restore again: the restore will ask for the mapping:\n%s",
		ErrTablespaceOutside, strings.Join(outside, "\n"))
}
