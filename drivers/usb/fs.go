package usb

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Filesystem is what a superblock or boot sector says about a filesystem.
type Filesystem struct {
	Type    string // as blkid names it: "ext4", "ext3", "ext2", "vfat", "exfat"
	Variant string // FAT's own type string: "FAT32", "FAT16", "FAT12"; else empty
	Label   string // volume label; empty when none is set
	// UUID is the volume's id as blkid prints it: "3f1c2a5e-8b0d-..." for
	// ext, "1234-ABCD" for FAT and exFAT.
	UUID string
}

// ReadFilesystem identifies the filesystem on a device or image by its
// superblock (ext2/3/4) or boot sector (FAT, exFAT), without mounting it. It
// returns ErrNoFilesystem when it finds none of them.
//
// Hand-written because no maintained Go library reads these few fields
// without pulling in a whole filesystem implementation.
func ReadFilesystem(r io.ReaderAt) (Filesystem, error) {
	var sb [1024]byte
	if _, err := r.ReadAt(sb[:], 1024); err == nil {
		if fs, ok := readExt(sb[:]); ok {
			return fs, nil
		}
	}
	var boot [512]byte
	if _, err := r.ReadAt(boot[:], 0); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Filesystem{}, ErrNoFilesystem
		}
		return Filesystem{}, fmt.Errorf("usb: read boot sector: %w", err)
	}
	if boot[510] != 0x55 || boot[511] != 0xAA {
		return Filesystem{}, ErrNoFilesystem
	}
	if string(boot[3:11]) == "EXFAT   " {
		return readExfat(r, boot[:])
	}
	if fs, ok := readFAT(boot[:]); ok {
		return fs, nil
	}
	return Filesystem{}, ErrNoFilesystem
}

// ext superblock fields (offsets within the superblock at byte 1024).
const (
	extMagicOff   = 0x38
	extCompatOff  = 0x5C
	extIncompOff  = 0x60
	extROCompOff  = 0x64
	extUUIDOff    = 0x68
	extLabelOff   = 0x78
	extMagic      = 0xEF53
	extJournalDev = 0x0008 // incompat: an external journal, not a filesystem
	// Features only ext4 has: extents, 64bit, mmp, flex_bg, ... (incompat)
	// and huge_file, gdt_csum, dir_nlink, extra_isize, metadata_csum (ro_compat).
	ext4Incompat = 0x0040 | 0x0080 | 0x0100 | 0x0200 | 0x0400 | 0x1000 | 0x10000
	ext4ROCompat = 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0400
	extHasJourn  = 0x0004 // compat
)

func readExt(sb []byte) (Filesystem, bool) {
	le := binary.LittleEndian
	if le.Uint16(sb[extMagicOff:]) != extMagic || le.Uint32(sb[extIncompOff:])&extJournalDev != 0 {
		return Filesystem{}, false
	}
	fs := Filesystem{Type: "ext2", Label: cString(sb[extLabelOff : extLabelOff+16])}
	switch {
	case le.Uint32(sb[extIncompOff:])&ext4Incompat != 0 || le.Uint32(sb[extROCompOff:])&ext4ROCompat != 0:
		fs.Type = "ext4"
	case le.Uint32(sb[extCompatOff:])&extHasJourn != 0:
		fs.Type = "ext3"
	}
	u := sb[extUUIDOff : extUUIDOff+16]
	fs.UUID = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	return fs, true
}

// readFAT reads a FAT12/16/32 boot sector. It insists on a sane BIOS
// parameter block and a "FAT" type string, so a partition table's sector
// (which also ends in 55 AA) is not taken for a filesystem.
func readFAT(b []byte) (Filesystem, bool) {
	le := binary.LittleEndian
	bps, spc := le.Uint16(b[11:]), b[13]
	if (bps != 512 && bps != 1024 && bps != 2048 && bps != 4096) ||
		spc == 0 || spc&(spc-1) != 0 || le.Uint16(b[14:]) == 0 || b[16] == 0 {
		return Filesystem{}, false
	}
	ext := 36 // FAT12/16: extended BPB at 36
	if le.Uint16(b[22:]) == 0 {
		ext = 64 // FAT32: sectors per FAT is in the FAT32 block, extended BPB at 64
	}
	typ := strings.TrimRight(string(b[ext+18:ext+26]), " ")
	if !strings.HasPrefix(typ, "FAT") || b[ext+2] != 0x29 {
		return Filesystem{}, false
	}
	fs := Filesystem{Type: "vfat", Variant: printable(typ)}
	fs.UUID = serial(le.Uint32(b[ext+3:]))
	if l := strings.TrimRight(printable(string(b[ext+7:ext+18])), " "); l != "NO NAME" {
		fs.Label = l
	}
	return fs, true
}

func serial(v uint32) string { return fmt.Sprintf("%04X-%04X", v>>16, v&0xFFFF) }

// cString returns b up to its first NUL, cleaned (ext labels are UTF-8).
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return clean(string(b))
}

// clean makes a string chosen by a device or whoever formatted it safe to
// log: invalid UTF-8 and control characters become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// printable keeps printable ASCII and turns other bytes into '?': labels in
// boot sectors are in an unknown code page.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
