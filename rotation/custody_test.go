package rotation

import (
	"bytes"
	"encoding/csv"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

// sampleLog returns a sealed custody log of five movements.
func sampleLog(t *testing.T, sealer chain.Sealer) []Entry {
	t.Helper()
	log, err := NewLog(nil, sealer)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, time.June, 2, 8, 5, 0, 0, newYork(t))
	for i, ev := range []EventKind{Remove, Insert, Remove, Insert, Lose} {
		log.Append(Entry{Time: start.Add(time.Duration(i) * time.Minute), Drive: "A", Generation: "Son", Event: string(ev), Who: "Maria", Decision: Accepted, Reasons: []string{"reason " + string(ev)}})
	}
	return log.Entries()
}

func TestCustodyChainDetectsTampering(t *testing.T) {
	key := chain.HMACSealer([]byte("box key"))
	tests := []struct {
		name      string
		tamper    func([]Entry) []Entry
		sealer    chain.Sealer
		wantIndex int // -1: the chain verifies
		wantWords string
	}{
		{"untouched", func(e []Entry) []Entry { return e }, key, -1, ""},
		{"edited who", func(e []Entry) []Entry { e[2].Who = "Sam"; return e }, key, 2, "edited"},
		{"edited reason", func(e []Entry) []Entry { e[1].Reasons = []string{"nothing happened"}; return e }, key, 1, "edited"},
		{"edited time", func(e []Entry) []Entry { e[3].Time = e[3].Time.Add(time.Hour); return e }, key, 3, "edited"},
		{"removed middle entry", func(e []Entry) []Entry { return slices.Delete(e, 2, 3) }, key, 2, "removed"},
		{"removed first entry", func(e []Entry) []Entry { return e[1:] }, key, 0, "removed"},
		{"swapped two entries", func(e []Entry) []Entry { e[1], e[2] = e[2], e[1]; return e }, key, 1, "reordered"},
		{"edited and rehashed without the key", func(e []Entry) []Entry {
			e[2].Who = "Sam"
			sum := e[2].sum()
			e[2].Hash = chain.HexSum(sum)
			return e
		}, key, 2, "key"},
		{"edited and rehashed, unsealed log", func(e []Entry) []Entry {
			e[4].Who = "Sam"
			e[4].Hash = chain.HexSum(e[4].sum())
			return e
		}, nil, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := tt.tamper(sampleLog(t, key))
			err := Verify(entries, tt.sealer)
			if tt.wantIndex < 0 {
				if err != nil {
					t.Fatalf("Verify: got %v; want nil", err)
				}
				return
			}
			var ce *chain.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Verify: got %v; want a *chain.Error", err)
			}
			if ce.Index != tt.wantIndex || !strings.Contains(ce.Reason, tt.wantWords) {
				t.Errorf("got first bad entry %d (%q); want %d mentioning %q", ce.Index, ce.Reason, tt.wantIndex, tt.wantWords)
			}
		})
	}
}

func TestCustodyJSONLinesRoundTrip(t *testing.T) {
	key := chain.HMACSealer([]byte("box key"))
	entries := sampleLog(t, key)
	var buf bytes.Buffer
	if err := WriteEntries(&buf, entries...); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(entries) {
		t.Errorf("got %d lines; want %d", n, len(entries))
	}
	back, err := ReadEntries(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log, err := NewLog(back, key)
	if err != nil {
		t.Fatalf("NewLog of read-back entries: got %v; want nil", err)
	}
	next := log.Append(Entry{Time: back[len(back)-1].Time.Add(time.Hour), Event: "insert", Decision: Accepted})
	if next.Seq != 6 || next.Prev != back[4].Hash {
		t.Errorf("appended after reading: got seq %d prev %s; want 6 and %s", next.Seq, next.Prev, back[4].Hash)
	}
	if _, err := ReadEntries(strings.NewReader(`{"seq":1,"colour":"red"}` + "\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("unknown field: got %v; want an error naming line 1", err)
	}
	if _, err := NewLog(slices.Delete(slices.Clone(back), 1, 2), key); err == nil {
		t.Errorf("NewLog of a log missing an entry: got nil; want an error")
	}
}

func TestCustodyCSV(t *testing.T) {
	entries := sampleLog(t, nil)
	entries[0].Reasons = []string{`Son was "ejected", safely.`, "Take it offsite."}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, entries, newYork(t)); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("read back CSV: %v", err)
	}
	if len(rows) != len(entries)+1 || rows[0][0] != "seq" {
		t.Fatalf("got %d rows starting %v; want a header and %d entries", len(rows), rows[0], len(entries))
	}
	if got, want := rows[1][1], "2025-06-02T08:05:00-04:00"; got != want {
		t.Errorf("time: got %s; want %s", got, want)
	}
	if got, want := rows[1][7], `Son was "ejected", safely. Take it offsite.`; got != want {
		t.Errorf("reasons: got %q; want %q", got, want)
	}
}

func TestCustodyMonthHTML(t *testing.T) {
	ny := newYork(t)
	entries := sampleLog(t, nil)
	july := entries[4]
	july.Time = time.Date(2025, time.July, 1, 9, 0, 0, 0, ny)
	log, _ := NewLog(entries[:4], nil)
	log.Append(july)
	log.Append(Entry{Time: july.Time, Event: "insert", Who: "<script>alert(1)</script>", Decision: UnknownDrive})
	report := MonthReport{Practice: "Elm Street Dental", Year: 2025, Month: time.June, Location: ny, Entries: log.Entries(), Printed: july.Time}
	var buf bytes.Buffer
	if err := WriteMonthHTML(&buf, report); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"June 2025", "Elm Street Dental", "custody chain verifies", "Mon 2 Jun 2025 08:05 EDT", "4 entries this month, 6 in the whole log"} {
		if !strings.Contains(page, want) {
			t.Errorf("June page lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "<link", "<script src", "alert(1)</script>"} {
		if strings.Contains(page, bad) {
			t.Errorf("June page contains %q; want a self-contained page", bad)
		}
	}
	report.Month, report.Entries = time.July, slices.Clone(log.Entries())
	report.Entries[5].Who = "<script>alert(1)</script>edited"
	buf.Reset()
	if err := WriteMonthHTML(&buf, report); err != nil {
		t.Fatal(err)
	}
	if page := buf.String(); !strings.Contains(page, "WARNING") || !strings.Contains(page, "entry 6") || strings.Contains(page, "<script>") {
		t.Errorf("July page with an edited entry: want a warning naming entry 6 and escaped text; got:\n%s", page)
	}
}
