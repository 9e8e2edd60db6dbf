package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// The lag chart is drawn here rather than by a chart library: it is two
// lines on a time axis, the page must work offline on the box, and an
// inline SVG made on the server needs no script at all.

const (
	chartW, chartH         = 640, 180
	padL, padR, padT, padB = 52, 12, 10, 28
)

// lagChart draws local and offsite WAL lag between from and to as an
// inline SVG. A gap in the samples longer than a fiftieth of the span
// breaks the line, so missing data is not drawn as a straight ramp.
func lagChart(title string, samples []status.Sample, from, to time.Time, loc *time.Location) template.HTML {
	span := to.Sub(from)
	if span <= 0 {
		span = time.Hour
	}
	top := niceCeil(maxLag(samples))
	x := func(t time.Time) float64 {
		return padL + float64(t.Sub(from))/float64(span)*(chartW-padL-padR)
	}
	y := func(v float64) float64 { return chartH - padB - v/top*(chartH-padT-padB) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	// Horizontal grid with seconds.
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, chartW-padR, y(v), y(v))
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, shortDuration(v))
	}
	// Time ticks: every 6 hours on a day, every day on a week.
	step, format := 6*time.Hour, "15:04"
	if span > 36*time.Hour {
		step, format = 24*time.Hour, "Mon 2"
	}
	for t := from.In(loc).Truncate(time.Hour); !t.After(to); t = t.Add(time.Hour) {
		if t.Before(from) || (step == 24*time.Hour && t.Hour() != 0) || (step == 6*time.Hour && t.Hour()%6 != 0) {
			continue
		}
		fmt.Fprintf(&b, `<line class="tick" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/>`, x(t), x(t), padT, chartH-padB)
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(t), chartH-padB+16, t.Format(format))
	}
	gap := span / 50
	for _, series := range []struct {
		class string
		value func(status.Sample) float64
	}{
		{"local", func(s status.Sample) float64 { return s.LocalSeconds }},
		{"offsite", func(s status.Sample) float64 { return s.OffsiteSeconds }},
	} {
		for _, run := range runs(samples, gap) {
			pts := make([]string, len(run))
			for i, s := range run {
				pts[i] = fmt.Sprintf("%.1f,%.1f", x(s.Time), y(min(series.value(s), top)))
			}
			if len(pts) == 1 {
				pts = append(pts, pts[0]) // a lone sample still shows as a dot
			}
			fmt.Fprintf(&b, `<polyline class="%s" points="%s"/>`, series.class, strings.Join(pts, " "))
		}
	}
	if len(samples) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no samples yet</text>`, chartW/2, chartH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// runs splits samples (oldest first) where two neighbours are further
// apart than gap.
func runs(samples []status.Sample, gap time.Duration) [][]status.Sample {
	var out [][]status.Sample
	start := 0
	for i := 1; i <= len(samples); i++ {
		if i == len(samples) || samples[i].Time.Sub(samples[i-1].Time) > gap {
			out = append(out, samples[start:i])
			start = i
		}
	}
	return out
}

func maxLag(samples []status.Sample) float64 {
	m := 0.0
	for _, s := range samples {
		m = max(m, s.LocalSeconds, s.OffsiteSeconds)
	}
	return m
}

// niceCeil rounds a lag up to a readable axis top of at least a minute:
// 1, 2 or 5 times a power of ten seconds.
func niceCeil(v float64) float64 {
	if v <= 60 {
		return 60
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// shortDuration writes seconds as "45s", "12m", "3.5h".
func shortDuration(sec float64) string {
	switch {
	case sec < 60:
		return fmt.Sprintf("%.0fs", sec)
	case sec < 3600:
		return fmt.Sprintf("%.0fm", sec/60)
	case sec < 86400:
		return trimZero(fmt.Sprintf("%.1f", sec/3600)) + "h"
	}
	return trimZero(fmt.Sprintf("%.1f", sec/86400)) + "d"
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// Size of a drive's SMART trend, drawn in its row of the health table.
const trendW, trendH = 220, 44

// healthTrend draws a drive's SMART checks, oldest first: temperature as a
// line, and bad sectors (reallocated, pending, uncorrectable, media
// errors) as red dots sized by count, so a drive starting to fail stands
// out at a glance. Checks that said "warning" or "failing" are marked.
func healthTrend(samples []status.HealthSample) template.HTML {
	if len(samples) == 0 {
		return ""
	}
	from, to := samples[0].Time, samples[len(samples)-1].Time
	span := to.Sub(from)
	if span <= 0 {
		span = time.Hour
	}
	lo, hi := samples[0].Temperature, samples[0].Temperature
	for _, s := range samples {
		lo, hi = min(lo, s.Temperature), max(hi, s.Temperature)
	}
	lo, hi = min(lo, 20), max(hi, 60)
	x := func(t time.Time) float64 { return 4 + float64(t.Sub(from))/float64(span)*(trendW-8) }
	y := func(c int) float64 { return trendH - 4 - float64(c-lo)/float64(hi-lo)*(trendH-8) }
	last := samples[len(samples)-1]
	title := fmt.Sprintf("%d SMART checks since %s; last %d °C, %d bad sectors", len(samples), from.Format("Jan 2"), last.Temperature, last.BadSectors)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="trend" viewBox="0 0 %d %d" role="img" aria-label="%s"><title>%s</title>`, trendW, trendH,
		template.HTMLEscapeString(title), template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line class="grid" x1="0" x2="%d" y1="%.1f" y2="%.1f"/>`, trendW, y(55), y(55)) // hot
	pts := make([]string, 0, len(samples))
	for _, s := range samples {
		if s.Temperature != 0 {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.Time), y(s.Temperature)))
		}
	}
	if len(pts) == 1 {
		pts = append(pts, pts[0])
	}
	if len(pts) > 0 {
		fmt.Fprintf(&b, `<polyline class="temperature" points="%s"/>`, strings.Join(pts, " "))
	}
	for _, s := range samples {
		if s.BadSectors > 0 {
			r := min(2+math.Log2(float64(s.BadSectors)), 8)
			fmt.Fprintf(&b, `<circle class="bad" cx="%.1f" cy="%d" r="%.1f"/>`, x(s.Time), trendH/2, r)
		}
		if s.Verdict == status.VerdictWarning || s.Verdict == status.VerdictFailing {
			fmt.Fprintf(&b, `<line class="verdict-%s" x1="%.1f" x2="%.1f" y1="0" y2="%d"/>`, s.Verdict, x(s.Time), x(s.Time), trendH)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
