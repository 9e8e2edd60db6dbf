package restore

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// TablespaceDataDir holds, inside the restored data directory, the
// tablespaces the operator did not map elsewhere (one directory per OID).
const TablespaceDataDir = "pg_tblspc_data"

// Placement says where one tablespace was restored.
type Placement struct {
	OID uint32
	// Original is the location in the backup or in the WAL: shown to the
	// operator, never written to.
	Original string
	Dir      string // where its files are
	Mapped   bool   // the operator chose Dir
	// Record is the CREATE TABLESPACE that replay turns into a no-op, for
	// a tablespace created after the backup (0 for one in the backup).
	Record archive.LSN
}

// ErrTablespaceOutside means the WAL to replay creates a tablespace outside
// the restore that no --tablespace maps.
var ErrTablespaceOutside = fmt.Errorf("the WAL to replay creates a tablespace outside the restore")

// place decides where every tablespace goes: where the operator mapped it
// by its original location; else, for a drill, under opt.TablespaceDir;
// else inside the data directory for one in the backup. One created by the
// WAL without a mapping is refused, unless its location is inside the data
// directory (replay then stays inside it).
func place(opt Options, b *archive.Backup, created []tablespaceCreate) ([]Placement, error) {
	var out []Placement
	taken := map[uint32]bool{}
	for _, ts := range b.Tablespaces {
		p := Placement{OID: ts.OID, Original: ts.Location, Dir: filepath.Join(opt.PGData, TablespaceDataDir, oidName(ts.OID))}
		p.placeBy(opt)
		taken[ts.OID] = true
		out = append(out, p)
	}
	var outside []string
	for _, c := range created {
		if taken[c.OID] {
			return nil, fmt.Errorf("restore: the WAL to replay creates tablespace %d (at %s) again after %s; restore to a target before %s",
				c.OID, c.Location, "the backup or an earlier creation", c.LSN)
		}
		taken[c.OID] = true
		p := Placement{OID: c.OID, Original: c.Location, Record: c.LSN}
		if !p.placeBy(opt) {
			if inside(opt.PGData, c.Location) {
				continue
			}
			outside = append(outside, describeOutside(c))
			continue
		}
		out = append(out, p)
	}
	if len(outside) > 0 {
		return nil, fmt.Errorf("restore: %w: PostgreSQL replays CREATE TABLESPACE into the location in the WAL, whatever else is mapped:\n%s",
			ErrTablespaceOutside, strings.Join(outside, "\n"))
	}
	return out, checkDistinct(out)
}

// placeBy applies the operator's mapping, or a drill's directory, and
// reports whether either gave the tablespace a place.
func (p *Placement) placeBy(opt Options) bool {
	if d, ok := opt.Tablespaces[p.Original]; ok {
		p.Dir, p.Mapped = d, true
		return true
	}
	if opt.TablespaceDir != "" {
		p.Dir = filepath.Join(opt.TablespaceDir, oidName(p.OID))
		return true
	}
	return false
}

func describeOutside(c tablespaceCreate) string {
	use := ""
	if ents, err := os.ReadDir(c.Location); err == nil && len(ents) > 0 {
		use = " (it exists and is in use: replay would write into it)"
	}
	return fmt.Sprintf("  tablespace %d is created at %s%s at %s; restore it into an empty directory of your choice with --tablespace %s=DIR",
		c.OID, c.Location, use, c.LSN, c.Location)
}

func checkDistinct(ps []Placement) error {
	sort.Slice(ps, func(i, j int) bool { return ps[i].OID < ps[j].OID })
	for i, a := range ps {
		for _, b := range ps[i+1:] {
			if a.Dir == b.Dir || inside(a.Dir, b.Dir) || inside(b.Dir, a.Dir) {
				return fmt.Errorf("restore: tablespaces %d and %d would share %s; map each to its own directory", a.OID, b.OID, b.Dir)
			}
		}
	}
	return nil
}

func oidName(oid uint32) string { return strconv.FormatUint(uint64(oid), 10) }

// inside reports whether path lies within dir (lexically: the restore made
// dir, and what it holds comes from the archive under os.Root).
func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel)
}

// prepareCreated makes, for each tablespace the WAL creates, what replaying
// its CREATE TABLESPACE would have made in the mapped place instead: the
// empty directory, its version directory (PG_15_<catalog version>) and the
// pg_tblspc link. The record itself is then replayed as a no-op.
func prepareCreated(pgdata string, ps []Placement) error {
	root, err := os.OpenRoot(pgdata)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer root.Close()
	version, err := versionDir(root)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.Record == 0 {
			continue
		}
		if ents, err := os.ReadDir(p.Dir); err == nil && len(ents) > 0 {
			return fmt.Errorf("restore: %s is not empty; restore tablespace %d into an empty directory so nothing is overwritten", p.Dir, p.OID)
		}
		if err := os.MkdirAll(filepath.Join(p.Dir, version), 0o700); err != nil {
			return fmt.Errorf("restore: tablespace %d: %w", p.OID, err)
		}
		if err := root.MkdirAll("pg_tblspc", 0o700); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if err := root.Symlink(p.Dir, filepath.Join("pg_tblspc", oidName(p.OID))); err != nil {
			return fmt.Errorf("restore: tablespace %d: %w", p.OID, err)
		}
	}
	return nil
}

// versionDir is TABLESPACE_VERSION_DIRECTORY for the restored cluster:
// PG_<major>_<catalog version>, from PG_VERSION and global/pg_control.
func versionDir(root *os.Root) (string, error) {
	major, err := dataMajor(root)
	if err != nil {
		return "", err
	}
	ctl, err := readHead(root, "global/pg_control", 16)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("PG_%d_%d", major, binary.LittleEndian.Uint32(ctl[12:])), nil
}

// readHead reads up to n bytes from the start of a restored file, and
// insists on n for a binary one.
func readHead(root *os.Root, name string, n int) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	b := make([]byte, n)
	got, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF && !strings.HasPrefix(name, "global/") {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("restore: reading the restored %s: %w", name, err)
	}
	return b[:got], nil
}
