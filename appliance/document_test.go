package appliance

import (
	"slices"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// TestDocumentOrderAndHeadline checks the pure parts of the status
// document: the most severe condition first, the unacknowledged before
// the acknowledged of equal severity, the headline from the first one.
func TestDocumentOrderAndHeadline(t *testing.T) {
	conds := []status.Condition{
		{Name: "busy", Severity: status.Busy, Message: "b"},
		{Name: "acked", Severity: status.Failure, Acknowledged: true, Message: "acked"},
		{Name: "swap", Severity: status.Attention, Message: "swap"},
		{Name: "fresh", Severity: status.Failure, Message: "fresh"},
	}
	sortConditions(conds)
	var got []string
	for _, c := range conds {
		got = append(got, c.Name)
	}
	if want := []string{"fresh", "acked", "swap", "busy"}; !slices.Equal(got, want) {
		t.Errorf("order: got %v; want %v", got, want)
	}
	if h := headline(conds); h != "fresh" {
		t.Errorf("headline: got %q; want %q", h, "fresh")
	}
	if h := headline([]status.Condition{{Name: "x", Severity: status.Good}}); h != "All good. Backups are current; nothing to do." {
		t.Errorf("headline when good: got %q", h)
	}
}

// TestLocalWAL checks the drive's lag: bytes behind the server, and
// seconds since the last flush only while bytes are behind.
func TestLocalWAL(t *testing.T) {
	flush := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	b := &inBox{streamErr: "x"}
	b.flushed.Store(postgres.LSN(1000))
	b.lastFlush.Store(flush.UnixNano())
	got := localWAL(b, 1500, flush.Add(30*time.Second))
	if got.Bytes != 500 || got.Seconds != 30 || got.FlushedLSN != postgres.LSN(1000).String() || !got.Streaming || got.LastError != "x" {
		t.Errorf("behind: got %+v; want 500 bytes, 30 s", got)
	}
	if got := localWAL(b, 1000, flush.Add(time.Hour)); got.Bytes != 0 || got.Seconds != 0 {
		t.Errorf("caught up: got %+v; want 0 bytes, 0 s", got)
	}
}
