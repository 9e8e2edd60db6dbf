package status

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSeverityRoundTripsByName(t *testing.T) {
	for s := Good; s <= Failure; s++ {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Severity
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("%s: got %v, %v; want %v", b, back, err, s)
		}
	}
	var s Severity
	if err := json.Unmarshal([]byte(`"purple"`), &s); err == nil {
		t.Errorf("unknown severity accepted")
	}
}

func TestWorst(t *testing.T) {
	if got := Worst(nil); got != Good {
		t.Errorf("no conditions: got %v; want good", got)
	}
	conds := []Condition{{Severity: Attention}, {Severity: Failure}, {Severity: Busy}}
	if got := Worst(conds); got != Failure {
		t.Errorf("got %v; want failure", got)
	}
}

// A week of samples every 30 seconds keeps a day at one-minute resolution
// and the rest at ten minutes, and never more than a week.
func TestHistoryIsBoundedAndOrdered(t *testing.T) {
	var h History
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	end := start.Add(10 * 24 * time.Hour)
	for at := start; at.Before(end); at = at.Add(30 * time.Second) {
		h.Add(Sample{Time: at, LocalSeconds: float64(at.Unix() % 100)})
	}
	all := h.Since(time.Time{})
	if n := len(all); n > 24*60+6*24*6+10 {
		t.Errorf("history holds %d samples; want at most about %d", n, 24*60+6*24*6)
	}
	if first := all[0].Time; end.Sub(first) > 7*24*time.Hour+time.Hour {
		t.Errorf("oldest sample %v is more than a week before %v", first, end)
	}
	for i := 1; i < len(all); i++ {
		if !all[i].Time.After(all[i-1].Time) {
			t.Fatalf("samples out of order at %d: %v then %v", i, all[i-1].Time, all[i].Time)
		}
	}
	day := h.Since(end.Add(-24 * time.Hour))
	if len(day) < 24*60-2 {
		t.Errorf("last day has %d samples; want one a minute (%d)", len(day), 24*60)
	}
}
