package rotation

import (
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

// MonthReport is a printable page of one month's custody entries for an
// auditor.
type MonthReport struct {
	// Practice names the practice on the page's heading.
	Practice string
	Year     int
	Month    time.Month
	// Location is the zone the month and times are taken in; nil means UTC.
	Location *time.Location
	// Entries is the whole log; the page shows the month's entries and
	// states whether the whole chain verifies.
	Entries []Entry
	// Sealer checks seals when not nil.
	Sealer chain.Sealer
	// Printed is when the page was made, shown in its footer.
	Printed time.Time
}

// monthRow is one table row of the page.
type monthRow struct {
	Entry
	When string
}

// WriteMonthHTML writes the month's page: a self-contained HTML document
// with its style inline and no external assets, laid out for printing.
func WriteMonthHTML(w io.Writer, r MonthReport) error {
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	start := time.Date(r.Year, r.Month, 1, 0, 0, 0, 0, loc)
	end := start.AddDate(0, 1, 0)
	var rows []monthRow
	for _, e := range r.Entries {
		if t := e.Time.In(loc); !t.Before(start) && t.Before(end) {
			rows = append(rows, monthRow{Entry: e, When: t.Format("Mon 2 Jan 2006 15:04 MST")})
		}
	}
	chain := "The custody chain verifies: no entry has been edited, removed or reordered."
	if err := Verify(r.Entries, r.Sealer); err != nil {
		chain = "WARNING: " + err.Error()
	}
	data := map[string]any{
		"Practice": r.Practice,
		"Title":    fmt.Sprintf("Backup media custody log, %s %d", r.Month, r.Year),
		"Rows":     rows,
		"Total":    len(r.Entries),
		"Chain":    chain,
		"Broken":   chain[0] == 'W',
		"Printed":  r.Printed.In(loc).Format("2 January 2006 15:04 MST"),
	}
	if err := monthPage.Execute(w, data); err != nil {
		return fmt.Errorf("rotation: write custody page %s %d: %w", r.Month, r.Year, err)
	}
	return nil
}

var monthPage = template.Must(template.New("month").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}{{with .Practice}} — {{.}}{{end}}</title>
<style>` + MonthStyle + `</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Practice}}<p>{{.}}</p>{{end}}
<p class="chain{{if .Broken}} broken{{end}}">{{.Chain}}</p>
{{if .Rows}}<table>
<thead><tr><th>#</th><th>Time</th><th>Drive</th><th>Event</th><th>Who</th><th>Decision</th><th>Reasons</th><th>Hash</th></tr></thead>
<tbody>
{{range .Rows}}<tr><td>{{.Seq}}</td><td>{{.When}}</td><td>{{.Generation}}{{with .Drive}}<br>{{.}}{{end}}</td><td>{{.Event}}</td><td>{{or .Who "—"}}</td><td>{{.Decision}}</td><td><ul>{{range .Reasons}}<li>{{.}}</li>{{end}}</ul></td><td class="hash">{{.Hash}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No entries this month.</p>{{end}}
<footer>{{len .Rows}} entries this month, {{.Total}} in the whole log. Printed {{.Printed}}. Reviewed by: ____________________ Date: __________</footer>
</body>
</html>
`))

// MonthStyle is the month page's inline style sheet, the one inline
// content it has: a page that serves it can allow exactly this text in
// its Content-Security-Policy by its hash.
const MonthStyle = `
body { font: 10pt/1.35 system-ui, sans-serif; margin: 2em; color: #000; }
h1 { font-size: 15pt; margin: 0 0 .2em; }
p.chain { padding: .4em .6em; border: 1px solid #888; }
p.broken { border: 2px solid #000; font-weight: bold; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: .25em .4em; text-align: left; vertical-align: top; }
th { background: #eee; }
tr { page-break-inside: avoid; }
td.hash { font: 7pt monospace; word-break: break-all; width: 9em; }
ul { margin: 0; padding-left: 1.1em; }
footer { margin-top: 1.5em; font-size: 8pt; }
@media print { body { margin: 0; } thead { display: table-header-group; } }
`
