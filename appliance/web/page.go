package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

// assets are the templates, style sheet and script, embedded so that the
// box serves them offline.
//
//go:embed assets
var assets embed.FS

// pages are parsed at the first page drawn, not when the program starts:
// every clinicctl command links this package, and parsing them cost each
// run (a WAL drain among them) a few ms of CPU and 4,600 allocations.
var pages = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"bytes":   status.Bytes,
		"seconds": func(s float64) string { return shortDuration(s) },
		"pct":     func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
		"join":    strings.Join,
		"trend":   healthTrend,
		"dict":    dict,
	}).ParseFS(assets, "assets/*.html"))
})

// render executes a named template into a buffer first, so a template
// error is not half a page.
func (s *Server) render(w io.Writer, name string, data any) {
	var buf bytes.Buffer
	if err := pages().ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("render", "op", name, "err", err)
		fmt.Fprint(w, "the page could not be drawn; see the box's log")
		return
	}
	w.Write(buf.Bytes())
}

// light is one lamp of the panel as the page draws it.
type light struct {
	Color string
	// State is the panel's word: "off", "steady", "slow", "fast", "code N".
	State string
	// Class is the CSS animation: off, steady, slow, fast or code.
	Class string
}

func lights(p status.Panel) []light {
	out := make([]light, 0, 3)
	for _, l := range []light{{Color: "green", State: p.Green}, {Color: "amber", State: p.Amber}, {Color: "red", State: p.Red}} {
		if l.State == "" {
			l.State = "off"
		}
		l.Class, _, _ = strings.Cut(l.State, " ")
		out = append(out, l)
	}
	return out
}

// view is everything the dashboard draws.
type view struct {
	Practice string
	Mode     string
	Who      string
	Role     string
	CSRF     string
	St       status.Status
	Lights   []light
	Chain    custodyChain
	Calendar calendar
	Day      template.HTML
	Week     template.HTML
	Sim      []SimDrive
	HasSim   bool
	Consent  bool
	// Fingerprint is the LAN certificate's, for people to check.
	Fingerprint string
	T           func(time.Time) string
	Ago         func(time.Time) string

	entries []rotation.Entry // the custody log as read for this view
}

func (s *Server) view(r *http.Request) view {
	q, now := reqOf(r), s.now()
	st := s.cfg.Box.Status()
	entries, err := s.cfg.Box.Custody()
	ch := verifyChain(entries, s.cfg.Sealer)
	if err != nil {
		ch = custodyChain{Reason: "the custody log cannot be read: " + err.Error()}
	}
	v := view{
		Practice: s.cfg.Practice, Mode: "lan", Who: q.caller.String(), Role: q.role, CSRF: s.csrfToken(q.principal),
		St: st, Lights: lights(st.Panel), Chain: ch,
		Calendar:    monthCalendar(entries, st.Swap.DueAt, now, s.loc),
		Day:         lagChart("WAL lag, last day", s.cfg.Box.History(now.Add(-24*time.Hour)), now.Add(-24*time.Hour), now, s.loc),
		Week:        lagChart("WAL lag, last week", s.cfg.Box.History(now.Add(-7*24*time.Hour)), now.Add(-7*24*time.Hour), now, s.loc),
		Consent:     st.Support.ConsentUntil.After(now),
		Fingerprint: s.cert.Fingerprint,
		T:           func(t time.Time) string { return s.when(t) },
		Ago:         func(t time.Time) string { return s.ago(t) },
		entries:     entries,
	}
	if q.mode == tailnetMode {
		v.Mode = "tailnet"
	}
	if s.cfg.Sim != nil {
		v.Sim, v.HasSim = s.cfg.Sim.SimDrives(), true
	}
	return v
}

func (s *Server) when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(s.loc).Format("Mon 2 Jan 15:04")
}

// ago writes how long ago t was, roughly, for people.
func (s *Server) ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := s.now().Sub(t)
	if d < 0 {
		return "in " + shortDuration(-d.Seconds())
	}
	if d < time.Minute {
		return "just now"
	}
	return shortDuration(d.Seconds()) + " ago"
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, "dashboard", s.view(r))
}

func (s *Server) custodyPage(w http.ResponseWriter, r *http.Request) {
	v := s.view(r)
	entries := v.entries
	months := map[string]bool{}
	var list []string
	for i := len(entries) - 1; i >= 0; i-- {
		if m := entries[i].Time.In(s.loc).Format("2006-01"); !months[m] {
			months[m] = true
			list = append(list, m)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	s.render(w, "custody", map[string]any{"V": v, "Entries": entries, "Months": list})
}

// custodyExport writes a month of the custody log as CSV or as the
// printable HTML page.
func (s *Server) custodyExport(w http.ResponseWriter, r *http.Request) {
	month, err := time.ParseInLocation("2006-01", r.FormValue("month"), s.loc)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "give the month as 2026-11")
		return
	}
	entries, err := s.cfg.Box.Custody()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "the custody log cannot be read: "+err.Error())
		return
	}
	name := "custody-" + month.Format("2006-01")
	switch r.FormValue("format") {
	case "csv":
		var inMonth []rotation.Entry
		for _, e := range entries {
			if t := e.Time.In(s.loc); t.Year() == month.Year() && t.Month() == month.Month() {
				inMonth = append(inMonth, e)
			}
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		err = rotation.WriteCSV(w, inMonth, s.loc)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", exportPolicy)
		err = rotation.WriteMonthHTML(w, rotation.MonthReport{
			Practice: s.cfg.Practice, Year: month.Year(), Month: month.Month(), Location: s.loc,
			Entries: entries, Sealer: s.cfg.Sealer, Printed: s.now(),
		})
	}
	if err != nil {
		s.log.Error("custody export", "op", name, "err", err)
	}
}

// dict makes a map from key, value pairs, to pass several values to a
// nested template.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return m
}
