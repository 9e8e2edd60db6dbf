package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// row is one measure of a section: clinicctl's median beside the reference
// tool's, and the target when the issue sets one.
type row struct {
	name     string
	ours     float64
	ref      float64 // NaN when there is no reference value
	format   string  // printf verb for the values, like "%.1f"
	target   string  // empty for rows that are only informative
	pass     bool
	showRate bool // print ours/ref
}

// section is one measurement: a table, or the reason it is missing.
type section struct {
	title   string
	about   string // the procedure, one paragraph
	measure string // the first column's heading; empty means "measure (median)"
	ref     string // the reference tool's column heading
	ours    string // the measured column's heading; empty means "clinicctl"
	rows    []row
	notes   []string
	err     error  // the measurement failed
	skip    string // the measurement could not run
}

func (r row) ratio() float64 { return r.ours / r.ref }

// values makes an informative row.
func values(name, format string, ours, ref float64) row {
	return row{name: name, ours: ours, ref: ref, format: format, showRate: !math.IsNaN(ref)}
}

// ratioAtMost makes a row whose target is ours/ref <= max.
func ratioAtMost(name, format string, ours, ref, max float64, why string) row {
	r := values(name, format, ours, ref)
	r.target = fmt.Sprintf("<= %.1fx%s", max, why)
	r.pass = r.ratio() <= max
	return r
}

// atMost makes a row whose target is ours <= max, whatever the reference.
func atMost(name, format string, ours, ref, max float64, unit string) row {
	r := values(name, format, ours, ref)
	r.target = fmt.Sprintf("clinicctl <= %g %s", max, unit)
	r.pass = ours <= max
	return r
}

// atLeast makes a row whose target is ours >= min.
func atLeast(name, format string, ours, min float64, unit string) row {
	r := values(name, format, ours, math.NaN())
	r.target = fmt.Sprintf("clinicctl >= %g %s", min, unit)
	r.pass = ours >= min
	return r
}

func (r row) cells() []string {
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "-"
		}
		return fmt.Sprintf(r.format, v)
	}
	rate, result := "", ""
	if r.showRate {
		rate = fmt.Sprintf("%.2fx", r.ratio())
	}
	if r.target != "" {
		result = "MISS"
		if r.pass {
			result = "PASS"
		}
	}
	return []string{r.name, f(r.ours), f(r.ref), rate, r.target, result}
}

// writeMarkdown writes a section as a heading, its procedure and a table.
func (s *section) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "## %s\n\n", s.title)
	if s.about != "" {
		fmt.Fprintf(w, "%s\n\n", s.about)
	}
	switch {
	case s.skip != "":
		fmt.Fprintf(w, "**Skipped:** %s\n\n", s.skip)
		return
	case s.err != nil:
		fmt.Fprintf(w, "**FAILED:** the measurement did not complete:\n\n```\n%s\n```\n\n", s.err)
	}
	if len(s.rows) > 0 {
		ref := s.ref
		if ref == "" {
			ref = "reference"
		}
		heading := s.measure
		if heading == "" {
			heading = "measure (median)"
		}
		ours := s.ours
		if ours == "" {
			ours = "clinicctl"
		}
		fmt.Fprintf(w, "| %s | %s | %s | ratio | target | result |\n", heading, ours, ref)
		fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
		for _, r := range s.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r.cells(), " | "))
		}
		fmt.Fprintln(w)
	}
	for _, n := range s.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(s.notes) > 0 {
		fmt.Fprintln(w)
	}
}

// misses lists the rows of all sections whose target was not met, and the
// sections that failed or were skipped.
func misses(sections []*section) []string {
	var out []string
	for _, s := range sections {
		switch {
		case s.skip != "":
			out = append(out, s.title+": skipped")
		case s.err != nil:
			out = append(out, s.title+": failed")
		}
		for _, r := range s.rows {
			if r.target != "" && !r.pass {
				out = append(out, fmt.Sprintf("%s: %s (%s)", s.title, r.name, r.target))
			}
		}
	}
	return out
}

// median of the values; NaN for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// series collects one tool's measures over the runs.
type series []measure

func (s series) med(f func(measure) float64) float64 {
	v := make([]float64, len(s))
	for i, m := range s {
		v[i] = f(m)
	}
	return median(v)
}

func (s series) wall() float64 { return s.med(func(m measure) float64 { return m.Wall.Seconds() }) }
func (s series) cpu() float64  { return s.med(func(m measure) float64 { return m.CPU().Seconds() }) }
func (s series) mb() float64   { return s.med(func(m measure) float64 { return float64(m.Bytes) / 1e6 }) }
func (s series) server() float64 {
	return s.med(func(m measure) float64 { return m.Server.Seconds() })
}
func (s series) rss() float64 {
	return s.med(func(m measure) float64 { return float64(m.MaxRSSKiB) / 1024 })
}

// maxRSS is the largest peak over the runs, in MiB.
func (s series) maxRSS() float64 {
	var top int64
	for _, m := range s {
		top = max(top, m.MaxRSSKiB)
	}
	return float64(top) / 1024
}

// seconds formats a duration for notes.
func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
