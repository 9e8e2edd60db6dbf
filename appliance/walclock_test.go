package appliance

import (
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/rotation"
)

func TestWALClock(t *testing.T) {
	t0 := time.Date(2031, 3, 2, 1, 0, 0, 0, time.UTC)
	c := newWALClock([]*archive.Backup{
		{StartLSN: 0x9000000, Start: t0.Add(24 * time.Hour)},
		{StartLSN: 0x3000000, Start: t0},
	}, 0xF000000, t0.Add(48*time.Hour))
	for _, tc := range []struct {
		end  archive.LSN
		want time.Time
	}{
		{0x1000000, t0.Add(-time.Nanosecond)},
		{0x3000000, t0},
		{0x6000000, t0.Add(12 * time.Hour)},
		{0x9000000, t0.Add(24 * time.Hour)},
		{0xC000000, t0.Add(36 * time.Hour)},
		{0x20000000, t0.Add(48 * time.Hour)},
	} {
		if got := c.time(tc.end); !got.Equal(tc.want) {
			t.Errorf("time(%s) = %v; want %v", tc.end, got, tc.want)
		}
	}
}

// Retention dates WAL on the appliance's clock: with that clock far ahead
// of the files' modification times (the demo's runs 720 times faster), no
// WAL a kept backup needs is taken for older than it and deleted.
func TestRetentionKeepsWALOnTheAppliancesClock(t *testing.T) {
	const seg = 16 << 20
	t0 := time.Now().Add(90 * 24 * time.Hour) // the appliance's clock, months ahead of the files'
	old := &archive.Backup{ID: "old", StartLSN: 2 * seg, Start: t0, Files: []archive.StoredFile{{Size: 100 << 20}}, Verified: &archive.Verification{OK: true}}
	cur := &archive.Backup{ID: "new", StartLSN: 10 * seg, Start: t0.Add(24 * time.Hour), Files: []archive.StoredFile{{Size: 100 << 20}}, Verified: &archive.Verification{OK: true}}
	tl := &archive.Timeline{TLI: 1}
	for n := uint64(1); n <= 12; n++ {
		tl.Segments = append(tl.Segments, archive.SegmentFile{TLI: 1, SegNo: n, Name: archive.SegmentName(1, n, seg), Size: 4 << 20, ModTime: time.Now()})
	}
	backups, wal, stored := driveContents([]*archive.Backup{old, cur}, []*archive.Timeline{tl}, seg, 12*seg, t0.Add(30*time.Hour))
	// Room for about one more backup: the plan must delete something.
	plan := rotation.PlanRetention(rotation.Space{Capacity: stored + 50<<20, Backups: backups, WAL: wal}, t0.Add(30*time.Hour))
	for _, it := range plan.Delete {
		if it.Kind != "wal" {
			continue
		}
		_, segNo, _ := archive.ParseSegmentName(it.ID, seg)
		if (segNo+1)*seg > uint64(cur.StartLSN) {
			t.Errorf("deleted %s (%s), which the kept backup %s needs", it.ID, it.Reasons, cur.ID)
		}
	}
	if len(plan.Delete) == 0 {
		t.Fatalf("deleted nothing; want the old backup and the WAL only it needed (plan %+v)", plan)
	}
}
