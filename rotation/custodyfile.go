package rotation

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

// WriteEntries writes entries as JSON lines, one entry per line, for
// appending to the custody log file.
func WriteEntries(w io.Writer, entries ...Entry) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("rotation: write custody entry %d: %w", e.Seq, err)
		}
	}
	return nil
}

// ReadEntries reads a custody log written by WriteEntries, strictly: any
// line it cannot read is an error naming the line. It does not verify the
// chain: pass the entries to Verify or NewLog.
func ReadEntries(r io.Reader) ([]Entry, error) {
	out, bad, err := ReadLog(r)
	if err == nil && len(bad) > 0 {
		err = errors.New(bad[0].String())
	}
	if err != nil {
		return nil, fmt.Errorf("rotation: read custody log: %w", err)
	}
	return out, nil
}

// ReadLog reads a custody log written by WriteEntries, skipping and
// returning the lines it cannot read (too long, not an entry, or torn)
// instead of failing on them. It rejects unknown fields. The error is for
// r failing only.
func ReadLog(r io.Reader) ([]Entry, []chain.BadLine, error) {
	var out []Entry
	bad, err := chain.ReadLines(r, chain.MaxLine, func(line []byte) error {
		var e Entry
		if err := strictUnmarshal(line, &e); err != nil {
			return fmt.Errorf("not a custody entry: %w", err)
		}
		out = append(out, e)
		return nil
	})
	return out, bad, err
}

// WriteCSV writes entries as CSV for an auditor, with a header row and
// times in loc (nil means each entry's own zone).
func WriteCSV(w io.Writer, entries []Entry, loc *time.Location) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"seq", "time", "drive", "generation", "event", "who", "decision", "reasons", "hash"})
	for _, e := range entries {
		t := e.Time
		if loc != nil {
			t = t.In(loc)
		}
		row := []string{strconv.FormatInt(e.Seq, 10), t.Format(time.RFC3339), string(e.Drive), e.Generation, e.Event, e.Who, string(e.Decision), strings.Join(e.Reasons, " "), e.Hash}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("rotation: write custody csv: %w", err)
	}
	return nil
}

// csvCell keeps a spreadsheet from reading a cell as a formula: a cell
// that starts with =, +, -, @, a tab or a carriage return (a drive's
// label, a tailnet login, a reason quoting either) gets a leading single
// quote, which spreadsheets show as text and do not evaluate.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
