package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/rotation"
)

// checkCSV checks the page's CSV export of a month against the verified
// log: every row must be an entry of the log, with the same hash and the
// same words. The CSV alone cannot be verified (it leaves out the chain
// and signatures), so it is vouched for by the log it came from.
func checkCSV(file string, entries []rotation.Entry) []string {
	f, err := os.Open(file)
	if err != nil {
		return []string{"csv: " + err.Error()}
	}
	defer f.Close()
	bySeq := map[int64]rotation.Entry{}
	for _, e := range entries {
		bySeq[e.Seq] = e
	}
	r := csv.NewReader(io.LimitReader(f, maxExport))
	r.FieldsPerRecord = 9
	var out []string
	for row := 1; ; row++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			return append(out, fmt.Sprintf("csv: %s is not the page's custody export: %v", file, err))
		}
		if row == 1 && rec[0] == "seq" {
			continue
		}
		if why := csvRowDiffers(rec, bySeq); why != "" {
			out = append(out, fmt.Sprintf("edited entry: %s row %d (seq %s) %s", file, row, rec[0], why))
		}
	}
}

// csvRowDiffers says how a CSV row differs from the log's entry; empty
// when it matches.
func csvRowDiffers(rec []string, bySeq map[int64]rotation.Entry) string {
	seq, err := strconv.ParseInt(rec[0], 10, 64)
	e, ok := bySeq[seq]
	if err != nil || !ok {
		return "is not in the log"
	}
	if rec[8] != e.Hash {
		return "has another hash than the log's entry: it is not that entry"
	}
	t, err := time.Parse(time.RFC3339, rec[1])
	fields := []struct{ name, got, want string }{
		{"drive", rec[2], string(e.Drive)}, {"generation", rec[3], e.Generation}, {"event", rec[4], e.Event},
		{"who", rec[5], e.Who}, {"decision", rec[6], string(e.Decision)}, {"reasons", rec[7], strings.Join(e.Reasons, " ")},
	}
	if err != nil || !t.Equal(e.Time.Truncate(time.Second)) {
		return "has another time than the log's entry: it was edited"
	}
	for _, f := range fields {
		if f.got != f.want {
			return fmt.Sprintf("has %s %q where the log's entry has %q: it was edited", f.name, f.got, f.want)
		}
	}
	return ""
}
