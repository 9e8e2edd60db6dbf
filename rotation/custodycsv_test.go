package rotation

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// TestCustodyCSVFormulas checks that no cell of the auditor's CSV can be
// read as a formula by a spreadsheet, whatever a drive label, a caller's
// name or a reason holds.
func TestCustodyCSVFormulas(t *testing.T) {
	tests := []struct {
		name, who, want string
	}{
		{"equals", `=HYPERLINK("http://evil.example","click")`, `'=HYPERLINK("http://evil.example","click")`},
		{"plus", "+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"minus", "-2+3", "'-2+3"},
		{"at", "@SUM(1,1)", "'@SUM(1,1)"},
		{"tab", "\t=1+1", "'\t=1+1"},
		{"carriage return", "\r=1+1", "'\r=1+1"},
		{"plain name", "front desk", "front desk"},
		{"formula later in the cell", "tailnet:it=1+1", "tailnet:it=1+1"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := sampleLog(t, nil)[:1]
			entries[0].Who = tt.who
			entries[0].Reasons = []string{tt.who}
			var buf bytes.Buffer
			if err := WriteCSV(&buf, entries, nil); err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatalf("read back CSV: %v", err)
			}
			if got := rows[1][5]; got != tt.want {
				t.Errorf("who: got %q; want %q", got, tt.want)
			}
			if got := rows[1][7]; got != tt.want {
				t.Errorf("reasons: got %q; want %q", got, tt.want)
			}
		})
	}
}
