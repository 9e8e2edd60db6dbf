package restore

import (
	"encoding/binary"
	"fmt"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
)

// Before recovery starts, a restore reads the WAL that recovery will replay
// for CREATE TABLESPACE records: PostgreSQL replays each into the absolute
// location in the record, whatever the restore mapped, which on the
// database server itself can be a live tablespace.
//
// This is a small reader of XLOG pages and record headers rather than
// pg_waldump: both must decrypt and decompress every segment, which is the
// cost on a long range (about what recovery's own wal-fetch spends, and far
// less than replaying it), but pg_waldump would need each segment written
// out to disk once more, from a PostgreSQL of the backup's version. Only
// tablespace records are read whole (and bounded in size); every other
// record is skipped by its length. Where PostgreSQL's reader would end the
// WAL (a zero or too short length, a page from another position, a
// tablespace record whose CRC fails) the scan ends too; where it is
// unsure it reads on, since a record found that recovery would not reach
// only asks the operator for a mapping that was not needed.

// walScan follows the records of one timeline through its segments.
type walScan struct {
	from, to archive.LSN // records outside are not replayed (to 0: no bound)
	found    []tablespaceCreate
	hdr      [recordHeader]byte
	nhdr     int
	start    archive.LSN // of the record being read
	skip     uint64      // bytes of it still to skip
	body     []byte      // a tablespace record being read
	need     int
	switched bool // a WAL switch: the rest of the segment is padding
	ended    bool
}

// scanTablespaceCreates lists the CREATE TABLESPACE records in the WAL a
// restore of b up to the end of w (or to t's LSN) replays. For a target
// time or name the scan goes on to the end of the window: where recovery
// stops is known only once it has replayed up to there.
func scanTablespaceCreates(repo *archive.Repo, ids []age.Identity, b *archive.Backup, w archive.Window, t Target) ([]tablespaceCreate, error) {
	tls, err := repo.Timelines()
	if err != nil {
		return nil, err
	}
	var out []tablespaceCreate
	seen := map[archive.LSN]bool{} // a new timeline repeats its parent's WAL up to the switch
	for _, tl := range tls {
		if tl.TLI < b.Timeline || tl.TLI > w.Timeline {
			continue
		}
		s := &walScan{from: b.StartLSN, to: t.LSN}
		if err := s.timeline(repo, ids, tl, uint64(b.StartLSN)/repo.Info.SegmentSize); err != nil {
			return nil, err
		}
		for _, c := range s.found {
			if !seen[c.LSN] {
				seen[c.LSN] = true
				out = append(out, c)
			}
		}
	}
	return out, nil
}

func (s *walScan) timeline(repo *archive.Repo, ids []age.Identity, tl *archive.Timeline, first uint64) error {
	size := repo.Info.SegmentSize
	prev := ^uint64(0)
	for _, seg := range tl.Segments {
		if seg.SegNo < first || seg.SegNo == prev {
			continue // before the backup, or the partial file beside a complete one
		}
		if s.to != 0 && seg.SegNo > uint64(s.to)/size {
			return nil
		}
		if prev != ^uint64(0) && seg.SegNo != prev+1 {
			s.restart() // a gap: a new streaming session begins afresh
		}
		prev = seg.SegNo
		sd, err := repo.ReadSegment(tl.TLI, seg.SegNo, ids)
		if err != nil {
			return fmt.Errorf("restore: reading the WAL to replay for tablespaces: %w", err)
		}
		if err := s.segment(archive.LSN(seg.SegNo*size), sd.Data[:sd.Valid]); err != nil {
			return fmt.Errorf("restore: WAL segment %s: %w", seg.Name, err)
		}
		if s.ended {
			return nil
		}
	}
	return nil
}

func (s *walScan) restart() { s.nhdr, s.skip, s.body, s.switched = 0, 0, nil, false }

// segment reads the pages of one segment.
func (s *walScan) segment(start archive.LSN, data []byte) error {
	if s.switched {
		s.restart() // the next record begins this segment
	}
	for off := 0; off+longPageHeader <= len(data) && !s.ended && !s.switched; off += walPageSize {
		page := data[off:min(off+walPageSize, len(data))]
		at := start + archive.LSN(off)
		info := binary.LittleEndian.Uint16(page[2:])
		if archive.LSN(binary.LittleEndian.Uint64(page[8:])) != at {
			s.ended = true // a zero or recycled page: PostgreSQL's WAL ends here
			break
		}
		hdr := shortPageHeader
		if off == 0 {
			hdr = longPageHeader
			if bs := binary.LittleEndian.Uint32(page[36:]); bs != walPageSize {
				return fmt.Errorf("WAL pages of %d bytes; only %d are supported", bs, walPageSize)
			}
		}
		mid := s.nhdr > 0 || s.skip > 0 || s.body != nil
		switch {
		case info&pageContRecord == 0 && mid:
			s.restart() // the record was cut off (or overwritten): read on from here
		case info&pageContRecord != 0 && !mid:
			s.skip = uint64(binary.LittleEndian.Uint32(page[16:])) // the tail of a record before the scan
		}
		if err := s.feed(at+archive.LSN(hdr), page[hdr:]); err != nil {
			return err
		}
	}
	return nil
}

// feed reads the record bytes of one page, the first at LSN at.
func (s *walScan) feed(at archive.LSN, b []byte) error {
	for len(b) > 0 && !s.ended && !s.switched {
		var n int
		switch {
		case s.skip > 0:
			n = int(min(s.skip, uint64(len(b))))
			s.skip -= uint64(n)
		case s.body != nil:
			n = min(s.need-len(s.body), len(b))
			s.body = append(s.body, b[:n]...)
			if len(s.body) == s.need {
				if err := s.record(s.body); err != nil {
					return err
				}
				s.body = nil
			}
		case s.nhdr == 0 && at%8 != 0:
			n = min(int(8-at%8), len(b)) // records start MAXALIGNed
		default:
			if s.nhdr == 0 {
				s.start = at
			}
			n = copy(s.hdr[s.nhdr:], b)
			if s.nhdr += n; s.nhdr == recordHeader {
				s.header()
			}
		}
		b, at = b[n:], at+archive.LSN(n)
	}
	return nil
}

// header decides what to do with a record once its header is read.
func (s *walScan) header() {
	s.nhdr = 0
	total := binary.LittleEndian.Uint32(s.hdr[:])
	rmid, info := s.hdr[17], s.hdr[16]&0xF0
	switch {
	case total < recordHeader:
		s.ended = true // a zero length: the end of the WAL
	case rmid == rmTablespace && total <= maxTablespaceRecord:
		s.body, s.need = append(make([]byte, 0, total), s.hdr[:]...), int(total)
		if s.need == recordHeader {
			s.ended = !crcOK(s.body)
			s.body = nil
		}
	case rmid == rmTablespace:
		s.ended = true // PostgreSQL fails such a record's CRC or its replay
	default:
		s.skip = uint64(total - recordHeader)
		s.switched = rmid == rmXLOG && info == xlogSwitch
	}
}

// record handles a whole tablespace record.
func (s *walScan) record(rec []byte) error {
	if !crcOK(rec) {
		s.ended = true
		return nil
	}
	oid, loc, ok, err := parseTablespaceCreate(rec)
	if err != nil {
		return fmt.Errorf("the record at %s: %w", s.start, err)
	}
	if ok && s.start >= s.from && (s.to == 0 || s.start <= s.to) {
		s.found = append(s.found, tablespaceCreate{LSN: s.start, OID: oid, Location: loc})
	}
	return nil
}
