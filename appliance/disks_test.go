package appliance

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// countingSurvey reports one disk and counts the surveys.
type countingSurvey struct{ n atomic.Int32 }

func (s *countingSurvey) Survey(context.Context) ([]status.Disk, error) {
	n := s.n.Add(1)
	return []status.Disk{{Name: "nvme0n1", Health: status.Health{Verdict: "ok", PowerOnHours: int(n)}}}, nil
}

// The status lists the surveyed disks, and again after six hours by the
// box's clock.
func TestDiskSurveyInStatus(t *testing.T) {
	start := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	s := &countingSurvey{}
	r := newRig(t, start, func(c *Config) { c.Disks = s })
	r.a.Poke()
	r.wait("the first survey", func(st status.Status) bool { return len(st.Disks) == 1 && st.Disks[0].Health.PowerOnHours == 1 })
	r.clock.Set(start.Add(healthEvery))
	r.a.Poke()
	r.wait("the second survey", func(st status.Status) bool { return len(st.Disks) == 1 && st.Disks[0].Health.PowerOnHours == 2 })
}

func TestSurveyDue(t *testing.T) {
	last := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		last, now time.Time
		want      bool
	}{
		{"never surveyed", time.Time{}, last, true},
		{"just now", last, last, false},
		{"a minute short of six hours", last, last.Add(healthEvery - time.Minute), false},
		{"six hours later", last, last.Add(healthEvery), true},
		{"the clock went back", last, last.Add(-time.Hour), true},
	} {
		if got := surveyDue(tc.last, tc.now); got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
}
