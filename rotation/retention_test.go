package rotation

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const gb = int64(1e9)

func TestPlanRetention(t *testing.T) {
	now := time.Date(2025, time.June, 3, 6, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return now.AddDate(0, 0, -n) }
	tests := []struct {
		name       string
		sp         Space
		wantDelete []string
		fits       bool
		warnings   []string
	}{
		{
			name: "room enough, nothing deleted",
			sp:   Space{Capacity: 1000 * gb, Backups: []Backup{{"b1", day(2), 100 * gb, true}, {"b2", day(1), 100 * gb, true}}},
			fits: true,
		},
		{
			name: "the only restorable backup is kept even when nothing fits",
			sp: Space{Capacity: 150 * gb, Need: 500 * gb,
				Backups: []Backup{{"bad", day(3), 50 * gb, false}, {"only", day(2), 90 * gb, true}, {"bad2", day(1), 5 * gb, false}}},
			wantDelete: []string{"backup bad", "backup bad2"},
			warnings:   []string{"does not fit"},
		},
		{
			name: "failed backups and unneeded WAL go before restorable backups",
			sp: Space{Capacity: 400 * gb, WALPerDay: 10 * gb,
				Backups: []Backup{{"b1", day(5), 100 * gb, true}, {"bad", day(4), 100 * gb, false}, {"b3", day(1), 100 * gb, true}},
				WAL:     []WALFile{{"w0", day(6), 40 * gb}, {"w1", day(4), 20 * gb}}},
			wantDelete: []string{"backup bad"},
			fits:       true,
		},
		{
			name: "oldest restorable backup and the WAL only it needed",
			sp: Space{Capacity: 400 * gb, WALPerDay: 70 * gb,
				Backups: []Backup{{"b1", day(5), 100 * gb, true}, {"b2", day(3), 100 * gb, true}, {"b3", day(1), 100 * gb, true}},
				WAL:     []WALFile{{"w1", day(4), 30 * gb}, {"w3", day(0).Add(-time.Hour), 10 * gb}}},
			wantDelete: []string{"backup b1", "wal w1"},
			fits:       true,
		},
		{
			name: "drive too small for one backup and a day of WAL",
			sp: Space{Capacity: 120 * gb,
				Backups: []Backup{{"b1", day(1), 100 * gb, true}},
				WAL:     []WALFile{{"old", day(3), 1 * gb}, {"w1", now.Add(-2 * time.Hour), 15 * gb}, {"w2", now.Add(-time.Hour), 10 * gb}}},
			wantDelete: []string{"wal old"},
			warnings:   []string{"too small", "does not fit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := PlanRetention(tt.sp, now)
			var deleted []string
			for _, it := range plan.Delete {
				deleted = append(deleted, it.Kind+" "+it.ID)
				if len(it.Reasons) == 0 {
					t.Errorf("deleted %s %s without a reason", it.Kind, it.ID)
				}
			}
			slices.Sort(deleted)
			if !slices.Equal(deleted, tt.wantDelete) {
				t.Errorf("deleted %v; want %v", deleted, tt.wantDelete)
			}
			if got := len(plan.Keep) + len(plan.Delete); got != len(tt.sp.Backups)+len(tt.sp.WAL) {
				t.Errorf("plan lists %d items; want every one of %d", got, len(tt.sp.Backups)+len(tt.sp.WAL))
			}
			for _, it := range plan.Keep {
				if len(it.Reasons) == 0 {
					t.Errorf("kept %s %s without a reason", it.Kind, it.ID)
				}
			}
			if plan.Fits() != tt.fits {
				t.Errorf("Fits() = %v (need %d, free %d); want %v", plan.Fits(), plan.Need, plan.Free, tt.fits)
			}
			if len(plan.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q; want %d mentioning %q", plan.Warnings, len(tt.warnings), tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(plan.Warnings[i], w) {
					t.Errorf("warning %d: got %q; want it to mention %q", i, plan.Warnings[i], w)
				}
			}
		})
	}
}

func TestPlanRetentionEstimatesDailyWAL(t *testing.T) {
	now := time.Date(2025, time.June, 3, 6, 0, 0, 0, time.UTC)
	sp := Space{Capacity: 1000 * gb,
		Backups: []Backup{{"b1", now.Add(-30 * time.Hour), 100 * gb, true}},
		WAL:     []WALFile{{"w0", now.Add(-25 * time.Hour), 7 * gb}, {"w1", now.Add(-23 * time.Hour), 3 * gb}, {"w2", now.Add(-time.Hour), 2 * gb}}}
	if got, want := PlanRetention(sp, now).Need, 105*gb; got != want {
		t.Errorf("need: got %d; want %d (newest backup plus the last 24 hours of WAL)", got, want)
	}
}

func TestBytesText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1500: "1.5 kB", 2 * gb: "2.0 GB", -10 * gb: "-10.0 GB", 4e12: "4.0 TB"} {
		if got := bytesText(n); got != want {
			t.Errorf("bytesText(%d) = %q; want %q", n, got, want)
		}
	}
}
