package usb

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf16"
)

// exFAT boot sector fields.
const (
	exfatFATOffset   = 80  // uint32, sectors
	exfatHeapOffset  = 88  // uint32, sectors
	exfatClusters    = 92  // uint32, cluster count
	exfatRootCluster = 96  // uint32
	exfatSerial      = 100 // uint32
	exfatSectorShift = 108 // log2 bytes per sector, 9..12
	exfatClustShift  = 109 // log2 sectors per cluster; sum with the above <= 25

	exfatEntry      = 32   // bytes per directory entry
	exfatLabelEntry = 0x83 // volume label entry, in use
	exfatMaxEntries = 1 << 16
)

// readExfat reads an exFAT boot sector and looks up the volume label, which
// exFAT keeps as an entry in the root directory rather than in the boot sector.
func readExfat(r io.ReaderAt, b []byte) (Filesystem, error) {
	le := binary.LittleEndian
	fs := Filesystem{Type: "exfat", UUID: serial(le.Uint32(b[exfatSerial:]))}
	bps, spc := uint(b[exfatSectorShift]), uint(b[exfatClustShift])
	if bps < 9 || bps > 12 || bps+spc > 25 {
		return Filesystem{}, ErrNoFilesystem
	}
	v := exfatVolume{r: r, clusterShift: bps + spc,
		fat: int64(le.Uint32(b[exfatFATOffset:])) << bps, heap: int64(le.Uint32(b[exfatHeapOffset:])) << bps,
		clusters: le.Uint32(b[exfatClusters:])}
	label, err := v.label(le.Uint32(b[exfatRootCluster:]))
	if err != nil {
		return fs, fmt.Errorf("usb: read exfat label: %w", err)
	}
	fs.Label = label
	return fs, nil
}

// exfatVolume locates clusters of an exFAT volume.
type exfatVolume struct {
	r            io.ReaderAt
	clusterShift uint
	fat, heap    int64 // byte offsets of the FAT and the cluster heap
	clusters     uint32
}

func (v exfatVolume) valid(c uint32) bool { return c >= 2 && c-2 < v.clusters }

// label scans the root directory, following its FAT chain, for the volume
// label entry. It stops at the end-of-directory entry, and after
// exfatMaxEntries entries so a corrupt chain cannot loop forever.
func (v exfatVolume) label(root uint32) (string, error) {
	perCluster := int64(1) << v.clusterShift / exfatEntry
	var e [exfatEntry]byte
	seen := 0
	for c := root; v.valid(c); {
		base := v.heap + int64(c-2)<<v.clusterShift
		for i := int64(0); i < perCluster; i++ {
			if seen++; seen > exfatMaxEntries {
				return "", nil
			}
			if _, err := v.r.ReadAt(e[:], base+i*exfatEntry); err != nil {
				return "", err
			}
			switch e[0] {
			case 0x00:
				return "", nil
			case exfatLabelEntry:
				n := min(int(e[1]), 11)
				u := make([]uint16, n)
				for j := range u {
					u[j] = binary.LittleEndian.Uint16(e[2+2*j:])
				}
				return clean(string(utf16.Decode(u))), nil
			}
		}
		var next [4]byte
		if _, err := v.r.ReadAt(next[:], v.fat+int64(c)*4); err != nil {
			return "", err
		}
		c = binary.LittleEndian.Uint32(next[:])
	}
	return "", nil
}
