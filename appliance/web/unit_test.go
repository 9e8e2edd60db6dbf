package web

import (
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

func TestMayAct(t *testing.T) {
	now := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	open := status.Status{Support: status.Support{ConsentUntil: now.Add(time.Hour)}}
	closed := status.Status{Support: status.Support{ConsentUntil: now.Add(-time.Second)}}
	tests := []struct {
		role, action string
		st           status.Status
		sim          bool
		ok           bool
		why          string
	}{
		{RoleStaff, ActEject, closed, false, true, "logged in"},
		{RoleStaff, ActConsent, closed, false, true, "logged in"},
		{RoleStaff, ActPlug, closed, false, false, whyNoSim},
		{RoleStaff, ActPlug, closed, true, true, "logged in"},
		{RoleStaff, "format", closed, false, false, whyUnknown},
		{RoleSupport, ActBackup, closed, false, false, whyNoConsent},
		{RoleSupport, ActBackup, open, false, true, "support window open until 2026-11-21T15:00:00Z"},
		{RoleSupport, ActAcknowledge, open, false, true, "support window"},
		{RoleSupport, ActConsent, open, false, false, whyAtTheBox},
		{RoleSupport, ActEnroll, open, false, false, whyAtTheBox},
		{RoleAdmin, ActDrill, closed, false, true, "administrator"},
		{RoleAdmin, ActEject, closed, false, false, whyAtTheBox},
		{"", ActBackup, open, false, false, whyNoRole},
	}
	for _, tt := range tests {
		t.Run(tt.role+" "+tt.action, func(t *testing.T) {
			ok, why := mayAct(tt.role, tt.action, tt.st, tt.sim, now)
			if ok != tt.ok || !strings.Contains(why, tt.why) {
				t.Errorf("got %v %q; want %v %q", ok, why, tt.ok, tt.why)
			}
		})
	}
}

func TestRolesFor(t *testing.T) {
	r := Roles{Admin: []string{"it@practice.example", "tag:it"}, Support: []string{"tag:support", "helper@vendor.example"}}
	tests := []struct {
		c    Caller
		want string
	}{
		{Caller{Tags: []string{"tag:support"}}, RoleSupport},
		{Caller{Tags: []string{"tag:other", "tag:it"}}, RoleAdmin},
		{Caller{Login: "IT@practice.example"}, RoleAdmin},
		{Caller{Login: "helper@vendor.example"}, RoleSupport},
		{Caller{Login: "tag:support"}, RoleSupport}, // a login is compared as given
		{Caller{Login: "someone@else.example"}, ""},
		{Caller{}, ""},
	}
	for _, tt := range tests {
		if got := r.For(tt.c); got != tt.want {
			t.Errorf("For(%+v): got %q; want %q", tt.c, got, tt.want)
		}
	}
}

func TestLagChart(t *testing.T) {
	now := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	var samples []status.Sample
	for i := range 60 {
		if i >= 20 && i < 40 {
			continue // the box was off for twenty minutes
		}
		samples = append(samples, status.Sample{Time: now.Add(-time.Hour + time.Duration(i)*time.Minute), LocalSeconds: 2, OffsiteSeconds: 400})
	}
	svg := string(lagChart("lag", samples, now.Add(-time.Hour), now, time.UTC))
	if got := strings.Count(svg, `<polyline class="local"`); got != 2 {
		t.Errorf("got %d local lines; want 2 around the gap", got)
	}
	if got := strings.Count(svg, `<polyline class="offsite"`); got != 2 {
		t.Errorf("got %d offsite lines; want 2", got)
	}
	if !strings.Contains(svg, ">500s<") && !strings.Contains(svg, ">8m<") {
		t.Errorf("axis top: want 500 s (8m) for a 400 s peak; got %s", svg)
	}
	if empty := string(lagChart("lag", nil, now.Add(-time.Hour), now, time.UTC)); !strings.Contains(empty, "no samples yet") || strings.Contains(empty, "polyline") {
		t.Errorf("empty chart: got %s", empty)
	}
	for _, tt := range []struct{ in, want float64 }{{0, 60}, {59, 60}, {61, 100}, {150, 200}, {400, 500}, {7200, 10000}} {
		if got := niceCeil(tt.in); got != tt.want {
			t.Errorf("niceCeil(%v): got %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestMonthCalendar(t *testing.T) {
	now := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC) // November 2026 starts on a Sunday
	entries := []rotation.Entry{
		{Time: time.Date(2026, 10, 31, 9, 0, 0, 0, time.UTC), Generation: "Son", Event: "insert", Decision: rotation.Accepted},
		{Time: time.Date(2026, 11, 7, 9, 0, 0, 0, time.UTC), Generation: "Son", Event: "insert", Decision: rotation.WrongDrive},
		{Time: time.Date(2026, 11, 7, 9, 5, 0, 0, time.UTC), Generation: "Father", Event: "insert", Decision: rotation.Accepted},
		{Time: time.Date(2026, 11, 14, 9, 0, 0, 0, time.UTC), Generation: "Father", Event: "remove", Decision: rotation.Ejected},
		{Time: time.Date(2026, 11, 14, 9, 0, 0, 0, time.UTC), Generation: "Father", Event: "enroll", Decision: rotation.Enrolled},
	}
	c := monthCalendar(entries, time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC), now, time.UTC)
	if c.Title != "November 2026" || len(c.Weeks) != 6 {
		t.Fatalf("got %q with %d weeks; want November 2026 with 6", c.Title, len(c.Weeks))
	}
	day := func(d int) calDay {
		for _, w := range c.Weeks {
			for _, x := range w {
				if x.Day == d {
					return x
				}
			}
		}
		t.Fatalf("no day %d", d)
		return calDay{}
	}
	if c.Weeks[0][6].Day != 1 || c.Weeks[0][5].Day != 0 {
		t.Errorf("first week: got %+v; want the 1st on Sunday", c.Weeks[0])
	}
	if d := day(7); len(d.Moves) != 2 || !d.Moves[0].Wrong || d.Moves[1].Wrong {
		t.Errorf("7th: got %+v; want a wrong insert then a good one", d.Moves)
	}
	if d := day(14); len(d.Moves) != 1 || d.Moves[0].Event != "remove" {
		t.Errorf("14th: got %+v; want one removal (enrollment is not a swap)", d.Moves)
	}
	if !day(21).Today || !day(28).Due || day(1).Today {
		t.Errorf("got today %v due %v; want today the 21st and due the 28th", day(21).Today, day(28).Due)
	}
}

// A drive's SMART trend: temperature as a line, a dot for each check that
// found bad sectors, a mark where the verdict turned; nothing for a drive
// never checked.
func TestHealthTrend(t *testing.T) {
	if got := healthTrend(nil); got != "" {
		t.Errorf("no checks drew %q; want nothing", got)
	}
	start := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	var samples []status.HealthSample
	for i := range 10 {
		s := status.HealthSample{Time: start.Add(time.Duration(i) * 6 * time.Hour), Verdict: "ok", Temperature: 35 + i}
		if i >= 7 {
			s.BadSectors, s.Verdict = int64(8*(i-6)), "warning"
		}
		samples = append(samples, s)
	}
	svg := string(healthTrend(samples))
	if n := strings.Count(svg, `<circle class="bad"`); n != 3 {
		t.Errorf("%d bad-sector dots; want 3 (the last three checks)", n)
	}
	if n := strings.Count(svg, `class="verdict-warning"`); n != 3 {
		t.Errorf("%d warning marks; want 3", n)
	}
	if pts := strings.Count(svg[strings.Index(svg, `class="temperature"`):], ","); pts < 10 {
		t.Errorf("temperature line has %d points; want 10", pts)
	}
	if !strings.Contains(svg, "10 SMART checks since Mar 2; last 44 °C, 24 bad sectors") {
		t.Errorf("title missing or wrong in %s", svg)
	}
}
