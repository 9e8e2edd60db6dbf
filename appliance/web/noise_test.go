package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
)

// records reads the audit log's current and renamed files, oldest first.
func (e *env) records() []audit.Record {
	e.t.Helper()
	old, _ := audit.ReadFile(e.audit.Path() + ".1")
	cur, err := audit.ReadFile(e.audit.Path())
	if err != nil {
		e.t.Fatal(err)
	}
	return append(old, cur...)
}

func actions(recs []audit.Record) map[string]int {
	n := map[string]int{}
	for _, r := range recs {
		n[r.Action]++
	}
	return n
}

// TestAnonymousFloodSummarized: thousands of requests from nobody, from
// one address or from many, leave a few records and a summary, and do not
// push the password's setting out of the audit log.
func TestAnonymousFloodSummarized(t *testing.T) {
	tests := []struct {
		name         string
		addrs, each  int
		maxRecords   int
		summaryNames string
	}{
		{"one address", 1, 3000, 8, "2997 more refused requests from lan:127.0.3.1 in the last minute"},
		{"many addresses", 60, 50, 60, "more refused requests from 58 other sources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.audit.MaxBytes = 64 << 10
			e.staff()
			before := len(e.records())
			for a := range tt.addrs {
				c := e.client(e.lan.URL, fmt.Sprintf("127.0.3.%d", 1+a))
				for range tt.each {
					c.get("/api/status")
				}
			}
			recs := e.records()
			if n := actions(recs)["set password"]; n != 1 {
				t.Errorf("got %d records of the password set; want 1, kept", n)
			}
			if got := len(recs) - before; got > tt.maxRecords {
				t.Errorf("got %d records for %d refused requests; want at most %d", got, tt.addrs*tt.each, tt.maxRecords)
			}
			// A minute later the next request brings the summary.
			e.clock.Advance(61 * time.Second)
			e.lanClient().get("/api/status")
			var summary string
			for _, r := range e.records() {
				if strings.Contains(r.Why, "more refused requests") {
					summary = r.Action + ": " + r.Why
				}
			}
			if !strings.Contains(summary, tt.summaryNames) {
				t.Errorf("got summary %q; want one saying %q", summary, tt.summaryNames)
			}
		})
	}
}

// TestPolledReadsCounted: an open tab asks for the status every two
// seconds; a day of that is a handful of records that say how many reads
// they stand for, and an action in between is recorded in full.
func TestPolledReadsCounted(t *testing.T) {
	e := newEnv(t)
	c := e.staff()
	before := actions(e.records())["GET /api/status"]
	for range 300 { // ten minutes of polling
		c.get("/api/status")
		e.clock.Advance(2 * time.Second)
	}
	c.get("/api/custody")
	c.get("/api/custody")
	e.clock.Advance(time.Second)
	c.get("/api/status")
	recs := e.records()
	n := actions(recs)
	if got := n["GET /api/status"] - before; got != 2 {
		t.Errorf("got %d records of 301 status reads; want 2", got)
	}
	if n["GET /api/custody"] != 2 {
		t.Errorf("got %d records of 2 custody reads; want both", n["GET /api/custody"])
	}
	last := recs[len(recs)-1]
	if last.Action != "GET /api/status" || !strings.Contains(last.Why, "and 299 more since") {
		t.Errorf("got last record %+v; want the status read saying 299 more were counted", last)
	}
}
