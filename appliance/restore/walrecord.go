package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// The parts of PostgreSQL's WAL format (access/xlogrecord.h, xlog_internal.h)
// that finding and neutralizing CREATE TABLESPACE records needs.
const (
	walPageSize     = 8192 // XLOG_BLCKSZ; other builds are refused
	shortPageHeader = 24   // MAXALIGN(sizeof(XLogPageHeaderData))
	longPageHeader  = 40   // MAXALIGN(sizeof(XLogLongPageHeaderData)), first page of a segment
	recordHeader    = 24   // sizeof(XLogRecord)
	pageContRecord  = 0x0001
	rmXLOG          = 0 // RM_XLOG_ID
	rmTablespace    = 5 // RM_TBLSPC_ID
	xlogNoop        = 0x20
	xlogSwitch      = 0x40
	tblspcCreate    = 0x00
	// A CREATE TABLESPACE record holds an OID and a path of at most
	// MAXPGPATH (1024) bytes: a larger one is hostile.
	maxTablespaceRecord = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// tablespaceCreate is a CREATE TABLESPACE found in WAL to be replayed.
type tablespaceCreate struct {
	LSN      archive.LSN // where the record starts
	OID      uint32
	Location string // the absolute path PostgreSQL would replay it into
}

// parseTablespaceCreate reads a complete tablespace record (header and
// body) whose CRC matched: its main data is the OID and a NUL-terminated
// path (xl_tblspc_create_rec). ok is false for other tablespace records.
func parseTablespaceCreate(rec []byte) (oid uint32, loc string, ok bool, err error) {
	if rec[16]&0xF0 != tblspcCreate {
		return 0, "", false, nil
	}
	p, mainLen := recordHeader, -1
	for mainLen < 0 && p < len(rec) {
		switch id := rec[p]; id {
		case 255: // XLR_BLOCK_ID_DATA_SHORT
			if p+2 <= len(rec) {
				mainLen = int(rec[p+1])
			}
			p += 2
		case 254: // XLR_BLOCK_ID_DATA_LONG
			if p+5 <= len(rec) {
				mainLen = int(binary.LittleEndian.Uint32(rec[p+1:]))
			}
			p += 5
		case 253: // XLR_BLOCK_ID_ORIGIN
			p += 3
		case 252: // XLR_BLOCK_ID_TOPLEVEL_XID
			p += 5
		default:
			return 0, "", false, fmt.Errorf("a tablespace record with block references (%d)", id)
		}
	}
	if mainLen < 5 || p > len(rec)-mainLen {
		return 0, "", false, errors.New("a tablespace record whose data does not fit")
	}
	main := rec[len(rec)-mainLen:]
	path := main[4:]
	for i, c := range path {
		if c == 0 {
			return binary.LittleEndian.Uint32(main), string(path[:i]), true, nil
		}
	}
	return 0, "", false, errors.New("a tablespace record whose path is not terminated")
}

// crcOK reports whether a record's CRC-32C (over the body, then the header
// up to xl_crc) matches.
func crcOK(rec []byte) bool {
	crc := crc32.Update(0, castagnoli, rec[recordHeader:])
	crc = crc32.Update(crc, castagnoli, rec[:20])
	return crc == binary.LittleEndian.Uint32(rec[20:])
}

// headerByteLSN is where byte off of the record header starting at rec
// lies: a header may continue on the next page, after its page header.
func headerByteLSN(rec archive.LSN, off int, segSize uint64) archive.LSN {
	pos := uint64(rec)
	for left := uint64(off); ; {
		if pos%walPageSize == 0 {
			pos += shortPageHeader
			if pos%segSize == shortPageHeader {
				pos += longPageHeader - shortPageHeader
			}
		}
		room := walPageSize - pos%walPageSize
		if left < room {
			return archive.LSN(pos + left)
		}
		left -= room
		pos += room
	}
}

// noopDelta is what turning a record's (rmid, info) from (RM_TBLSPC_ID,
// CREATE) into (RM_XLOG_ID, NOOP) does to its CRC. The two bytes are the
// last but two of the CRC's input, so the change is the same whatever
// precedes them (CRC is affine), and the rest of the record, which may lie
// in the next segment, is not needed.
var noopDelta = crc32.Checksum([]byte{xlogNoop ^ tblspcCreate, rmXLOG ^ rmTablespace, 0, 0}, castagnoli) ^
	crc32.Checksum([]byte{0, 0, 0, 0}, castagnoli)

// MapTablespaceRecords turns the CREATE TABLESPACE records at the given
// LSNs that lie in a segment file (which starts at segStart) into no-ops,
// for tablespaces whose directory and pg_tblspc link the restore already
// made where the operator mapped them: PostgreSQL would otherwise replay
// them into the location in the record, whatever was mapped. Bytes 16 to
// 23 of a record header (xl_info, xl_rmid, xl_crc) always lie on one page,
// so each record is patched in place, eight bytes, in whichever segment
// holds them.
func MapTablespaceRecords(path string, segStart archive.LSN, segSize uint64, records []archive.LSN) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for _, rec := range records {
		at := headerByteLSN(rec, 16, segSize)
		if at < segStart || uint64(at-segStart) >= segSize {
			continue
		}
		var err error
		if f == nil {
			if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
				return err
			}
		}
		if err := noopRecord(f, int64(at-segStart), rec); err != nil {
			return err
		}
	}
	if f == nil {
		return nil
	}
	err := f.Close()
	f = nil
	return err
}

func noopRecord(f *os.File, off int64, rec archive.LSN) error {
	var b [8]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return fmt.Errorf("restore: the record at %s: %w", rec, err)
	}
	if b[1] != rmTablespace || b[0]&0xF0 != tblspcCreate {
		return fmt.Errorf("restore: the record at %s is not the CREATE TABLESPACE the restore found there; restore again", rec)
	}
	b[0] ^= xlogNoop ^ tblspcCreate
	b[1] = rmXLOG
	binary.LittleEndian.PutUint32(b[4:], binary.LittleEndian.Uint32(b[4:])^noopDelta)
	_, err := f.WriteAt(b[:], off)
	return err
}
