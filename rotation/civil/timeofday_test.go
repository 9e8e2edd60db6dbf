package civil

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSpanContains(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	night := Span{Start: TimeOfDay{Hour: 22}, End: TimeOfDay{Hour: 7}}
	lunch := Span{Start: TimeOfDay{Hour: 12}, End: TimeOfDay{Hour: 13, Minute: 30}}
	at := func(h, m int) time.Time { return time.Date(2026, 3, 2, h, m, 0, 0, chicago) }
	for _, tc := range []struct {
		name string
		span Span
		t    time.Time
		want bool
	}{
		{"night, before it starts", night, at(21, 59), false},
		{"night, as it starts", night, at(22, 0), true},
		{"night, after midnight", night, at(3, 0), true},
		{"night, the last minute", night, at(6, 59), true},
		{"night, as it ends", night, at(7, 0), false},
		{"night, midday", night, at(12, 0), false},
		{"lunch, inside", lunch, at(13, 29), true},
		{"lunch, as it ends", lunch, at(13, 30), false},
		{"lunch, before", lunch, at(11, 59), false},
		{"none", Span{}, at(0, 0), false},
		{"start equal to end", Span{Start: TimeOfDay{Hour: 3}, End: TimeOfDay{Hour: 3}}, at(3, 0), false},
		{"another zone's clock is read in the practice's", night, time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC), true}, // 22:00 in Chicago
	} {
		if got := tc.span.Contains(tc.t, chicago); got != tc.want {
			t.Errorf("%s: %v.Contains(%s) = %v; want %v", tc.name, tc.span, tc.t.Format(time.RFC3339), got, tc.want)
		}
	}
}

func TestTimeOfDayText(t *testing.T) {
	var s Span
	if err := json.Unmarshal([]byte(`{"start":"22:00","end":"07:30"}`), &s); err != nil {
		t.Fatal(err)
	}
	if want := (Span{Start: TimeOfDay{Hour: 22}, End: TimeOfDay{Hour: 7, Minute: 30}}); s != want {
		t.Errorf("got %+v; want %+v", s, want)
	}
	if b, _ := json.Marshal(s); string(b) != `{"start":"22:00","end":"07:30"}` {
		t.Errorf("written as %s", b)
	}
	for _, bad := range []string{`"7"`, `"24:00"`, `"07:60"`, `"seven"`} {
		var tod TimeOfDay
		if err := json.Unmarshal([]byte(bad), &tod); err == nil {
			t.Errorf("%s read as %v; want an error", bad, tod)
		}
	}
	if err := (TimeOfDay{Hour: 24}).Validate(); err == nil {
		t.Error("24:00 validates; want an error")
	}
}
