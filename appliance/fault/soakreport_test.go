//go:build soak

package fault

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/durable"
)

// soakMetric is one line of the soak's plot and one column of its table.
type soakMetric struct {
	name, unit string
	get        func(soakSample) float64
	floor      float64 // growth below this is not judged
	grows      bool    // stored data that may grow with the days
}

const mib = 1 << 20

var soakMetrics = []soakMetric{
	{"RSS", "MiB", func(x soakSample) float64 { return float64(x.RSS) / mib }, 64, false},
	{"goroutines", "", func(x soakSample) float64 { return float64(x.Goroutines) }, 200, false},
	{"threads", "", func(x soakSample) float64 { return float64(x.Threads) }, 40, false},
	{"open files", "", func(x soakSample) float64 { return float64(x.FDs) }, 64, false},
	{"state (/perm)", "MiB", func(x soakSample) float64 { return float64(x.State) / mib }, 0, true},
	{"custody log", "KiB", func(x soakSample) float64 { return float64(x.Custody) / 1024 }, 0, true},
	{"drive in the box, used", "MiB", func(x soakSample) float64 { return float64(x.DriveUsed) / mib }, 96, false},
	{"WAL lag, drive", "KiB", func(x soakSample) float64 { return float64(x.LocalLag) / 1024 }, 16 * 1024, false},
	{"WAL lag, vault", "KiB", func(x soakSample) float64 { return float64(x.OffsiteLag) / 1024 }, 16 * 1024, false},
}

// writeSoak writes SOAK.md (the table) and soak.svg (the plot) to dir.
func writeSoak(dir string, xs []soakSample, m Machine, took time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## A month of clinic life (make soak)\n\n%d simulated days of cmd/clinicbox on its controlled clock in %s on %s (%d CPUs, %s); load average %s at the end. ",
		len(xs), took.Round(time.Second), m.Host, m.CPUs, m.Go, loadAverage())
	b.WriteString("Three drives swapped every workday at 08:00, a nightly backup at 21:00, a clinic workload, WAL and base backups shipped to a vault over an in-process tailnet. Read after each day's nightly backup.\n\n![soak](soak.svg)\n\n| day |")
	for _, mt := range soakMetrics {
		fmt.Fprintf(&b, " %s |", label(mt))
	}
	b.WriteString("\n| ---: |" + strings.Repeat(" ---: |", len(soakMetrics)) + "\n")
	for _, x := range xs {
		fmt.Fprintf(&b, "| %d |", x.Day)
		for _, mt := range soakMetrics {
			fmt.Fprintf(&b, " %.1f |", mt.get(x))
		}
		b.WriteString("\n")
	}
	if err := durable.WriteFile(filepath.Join(dir, "SOAK.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(dir, "soak.svg"), []byte(soakSVG(xs)), 0o644)
}

func label(m soakMetric) string {
	if m.unit == "" {
		return m.name
	}
	return m.name + " (" + m.unit + ")"
}

// soakSVG draws one small chart per metric, day on the x axis, from zero
// to the metric's highest reading on the y axis.
func soakSVG(xs []soakSample) string {
	const w, h, pad, cols = 300, 130, 30, 3
	rows := (len(soakMetrics) + cols - 1) / cols
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", cols*w, rows*h)
	for i, mt := range soakMetrics {
		x0, y0 := (i%cols)*w, (i/cols)*h
		top := maxOf(xs, mt.get)
		if top == 0 {
			top = 1
		}
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)"><text x="%d" y="14">%s, up to %.1f</text>`, x0, y0, pad, label(mt), top)
		fmt.Fprintf(&b, `<rect x="%d" y="20" width="%d" height="%d" fill="none" stroke="#ccc"/>`, pad, w-2*pad, h-pad-20)
		var pts []string
		for j, x := range xs {
			px := float64(pad) + float64(w-2*pad)*float64(j)/float64(max(1, len(xs)-1))
			py := float64(h-pad) - float64(h-pad-20)*mt.get(x)/top
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#2a6" stroke-width="1.5" points="%s"/>`, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d">day 1</text><text x="%d" y="%d" text-anchor="end">day %d</text></g>`+"\n", pad, h-pad+14, w-pad, h-pad+14, len(xs))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
