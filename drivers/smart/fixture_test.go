package smart

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the synthesized fixtures in testdata")

// ataAttr is one attribute as a test puts it into the pages.
type ataAttr struct {
	id           uint8
	prefail      bool
	value, worst uint8
	threshold    uint8
	raw          [6]byte // as the drive sends it, least significant byte first
}

// rawLE is a raw attribute value's six bytes, least significant first.
func rawLE(v uint64) [6]byte {
	var b [6]byte
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

// The byte layouts below are written from the specifications, by offset,
// and share no code or structure with the decoder: ATA/ATAPI-8 ACS, SMART
// READ DATA (B0h/D0h) and SMART READ ATTRIBUTE THRESHOLDS (B0h/D1h), and
// the NVMe base specification's SMART / Health Information log page
// (02h). Fields the decoder must skip carry non-zero bytes, so a
// misaligned read shows.

// ataDataPage is a SMART READ DATA page: bytes 0-1 the revision (little
// endian); from byte 2, 30 entries of 12 bytes (ID, flags in 2 bytes,
// current value, worst value, 6 raw bytes, 1 reserved byte); bytes 362-385
// the off-line and self-test fields; byte 511 the checksum.
func ataDataPage(attrs []ataAttr) []byte {
	p := make([]byte, PageSize)
	p[0], p[1] = 0x10, 0x00 // revision 16
	for i, a := range attrs {
		e := p[2+12*i : 2+12*i+12]
		e[0] = a.id
		e[1], e[2] = 0x32, 0x00 // online, performance-related, event count
		if a.prefail {
			e[1] |= 0x01
		}
		e[3], e[4] = a.value, a.worst
		copy(e[5:11], a.raw[:])
		e[11] = 0xEE // reserved: must not leak into the next entry
	}
	p[362] = 0x82 // off-line data collection status: completed, auto on
	p[363] = 0x00 // self-test execution status
	p[364], p[365] = 0x40, 0x01
	p[367] = 0x7B // off-line data collection capability
	p[368] = 0x03 // SMART capability
	p[370] = 0x01 // error logging supported
	p[372] = 0x02 // short self-test polling time
	p[373] = 0x30 // extended self-test polling time
	p[400] = 0x5A // vendor specific
	return seal(p)
}

// ataThresholdsPage is a SMART READ ATTRIBUTE THRESHOLDS page: bytes 0-1
// the revision; from byte 2, 30 entries of 12 bytes (ID, threshold, 10
// reserved bytes), here in the reverse order of the data page (drives
// match them by ID); byte 511 the checksum.
func ataThresholdsPage(attrs []ataAttr) []byte {
	p := make([]byte, PageSize)
	p[0], p[1] = 0x10, 0x00
	for i := range attrs {
		a := attrs[len(attrs)-1-i]
		e := p[2+12*i : 2+12*i+12]
		e[0], e[1] = a.id, a.threshold
	}
	p[420] = 0xA5 // vendor specific
	return seal(p)
}

// seal sets byte 511 so that the page's 512 bytes sum to zero (mod 256).
func seal(p []byte) []byte {
	var sum byte
	for _, c := range p[:511] {
		sum += c
	}
	p[511] = 0 - sum
	return p
}

// nvmeLog is what a test puts into an NVMe SMART / Health log page.
type nvmeLog struct {
	critical             uint8
	kelvin               uint16
	spare, spareThresh   uint8
	used                 uint8
	unitsRead            uint64
	hours, unsafe, media uint64
}

// nvmeHealthPage is log page 02h: byte 0 critical warning; 1-2 composite
// temperature in kelvin; 3 available spare; 4 its threshold; 5 percentage
// used; 32, 48, 64, 80, 96, 112, 128, 144, 160, 176: 16-byte counters
// (data units read and written, host reads and writes, controller busy
// time, power cycles, power-on hours, unsafe shutdowns, media and data
// integrity errors, error log entries), least significant byte first.
func nvmeHealthPage(l nvmeLog) []byte {
	p := make([]byte, PageSize)
	p[0] = l.critical
	p[1], p[2] = byte(l.kelvin), byte(l.kelvin>>8)
	p[3], p[4], p[5] = l.spare, l.spareThresh, l.used
	put128 := func(off int, v uint64) {
		for i := range 8 {
			p[off+i] = byte(v >> (8 * i))
		}
	}
	put128(32, l.unitsRead)
	put128(48, 0x0203040506)    // data units written
	put128(64, 0x1111)          // host read commands
	put128(80, 0x2222)          // host write commands
	put128(96, 77)              // controller busy time
	put128(112, 55)             // power cycles
	put128(128, l.hours)        // power-on hours
	put128(144, l.unsafe)       // unsafe shutdowns
	put128(160, l.media)        // media and data integrity errors
	put128(176, 9)              // error log entries
	p[200], p[201] = 0x3C, 0x01 // temperature sensor 1: 316 K
	return p
}

func healthyATA() []ataAttr {
	return []ataAttr{
		{1, true, 100, 100, 6, rawLE(0)}, {5, true, 100, 100, 36, rawLE(0)}, {9, false, 97, 97, 0, rawLE(2950)},
		{187, false, 100, 100, 0, rawLE(0)}, {194, false, 36, 45, 0, [6]byte{36, 0, 20, 0, 50, 0}}, {197, false, 100, 100, 0, rawLE(0)},
		{198, false, 100, 100, 0, rawLE(0)}, {199, false, 200, 200, 0, rawLE(0)},
	}
}

func with(attrs []ataAttr, id uint8, f func(*ataAttr)) []ataAttr {
	out := append([]ataAttr(nil), attrs...)
	for i := range out {
		if out[i].id == id {
			f(&out[i])
		}
	}
	return out
}

func nvmeHealthy() nvmeLog {
	return nvmeLog{kelvin: 310, spare: 100, spareThresh: 10, used: 3, unitsRead: 123456, hours: 4321, unsafe: 6}
}

// fixtures are the synthesized pages in testdata (see its README.md).
func fixtures() map[string][2][]byte {
	out := map[string][2][]byte{}
	ata := func(name string, attrs []ataAttr) {
		out[name] = [2][]byte{ataDataPage(attrs), ataThresholdsPage(attrs)}
	}
	ata("ata-healthy", healthyATA())
	ata("ata-reallocated", with(healthyATA(), 5, func(a *ataAttr) { a.raw, a.value = rawLE(12), 99 }))
	ata("ata-pending", with(healthyATA(), 197, func(a *ataAttr) { a.raw = rawLE(3) }))
	ata("ata-prefail", with(healthyATA(), 5, func(a *ataAttr) { a.value, a.raw = 30, rawLE(2000) }))
	ata("ata-hot", with(healthyATA(), 194, func(a *ataAttr) { a.raw = [6]byte{61, 0, 20, 0, 63, 0} }))
	ata("ata-crc", with(healthyATA(), 199, func(a *ataAttr) { a.raw = rawLE(40) }))
	nvme := func(name string, f func(*nvmeLog)) {
		l := nvmeHealthy()
		f(&l)
		out[name] = [2][]byte{nvmeHealthPage(l)}
	}
	nvme("nvme-healthy", func(*nvmeLog) {})
	nvme("nvme-worn", func(l *nvmeLog) { l.used = 93 })
	nvme("nvme-critical", func(l *nvmeLog) { l.critical, l.used, l.media = 0x04, 40, 17 })
	return out
}

// The pages in testdata are exactly the ones the spec layouts above build,
// so what each fixture holds is readable here; -update rewrites them.
func TestFixturesMatchSpecLayouts(t *testing.T) {
	for name, pages := range fixtures() {
		files := map[string][]byte{name + ".data.bin": pages[0]}
		if pages[1] != nil {
			files[name+".thresholds.bin"] = pages[1]
		}
		for file, want := range files {
			path := filepath.Join("testdata", file)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestFixturesMatchSpecLayouts -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the page its spec layout builds (run go test -run TestFixturesMatchSpecLayouts -update)", path)
			}
		}
	}
}
