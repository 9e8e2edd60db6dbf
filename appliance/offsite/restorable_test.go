package offsite

import (
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// A base backup stored in the vault counts as restorable only once the
// vault also holds, durably, the WAL up to the backup's end: WAL travels on
// its own stream, and a vault whose newest backup lacks it cannot restore
// that backup if the box dies right then.
func TestBackupCountsOnceItsWALIsThere(t *testing.T) {
	s := &Shipper{cfg: Config{Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}}
	start := time.Unix(1_799_990_000, 0)
	b := &archive.Backup{ID: "20270115T080000Z", Start: start, EndLSN: 0x5000100, EndTimeline: 1}
	s.ack(1, 0x4000000)
	s.mu.Lock()
	s.stored(b)
	st := s.st
	s.mu.Unlock()
	if st.Restorable != "" || st.WaitingForWAL != b.ID || st.LastBaseBackup != b.ID {
		t.Fatalf("stored before its WAL: restorable %q, waiting %q, last %q; want none, %s, %s", st.Restorable, st.WaitingForWAL, st.LastBaseBackup, b.ID, b.ID)
	}
	s.ack(1, 0x5000000)
	if st := s.Status(); st.Restorable != "" {
		t.Fatalf("WAL short of the backup's end: restorable %q; want none yet", st.Restorable)
	}
	s.ack(1, 0x5000100)
	if st := s.Status(); st.Restorable != b.ID || !st.RestorableTime.Equal(start) || st.WaitingForWAL != "" {
		t.Fatalf("WAL at the backup's end: restorable %q at %v, waiting %q; want %s at %v, none waiting", st.Restorable, st.RestorableTime, st.WaitingForWAL, b.ID, start)
	}
	// A backup whose WAL is already there counts at once.
	c := &archive.Backup{ID: "20270116T080000Z", Start: start.Add(24 * time.Hour), EndLSN: 0x5000080, EndTimeline: 1}
	s.mu.Lock()
	s.stored(c)
	s.mu.Unlock()
	if st := s.Status(); st.Restorable != c.ID {
		t.Errorf("backup with its WAL already stored: restorable %q; want %s", st.Restorable, c.ID)
	}
}
