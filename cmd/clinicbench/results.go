package main

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/clinicbox/clinicbox/appliance/durable"
)

// results is everything RESULTS.md says.
type results struct {
	cfg      config
	started  time.Time
	took     time.Duration
	machine  machine
	workload []string
	sections []*section
}

// write renders the results as Markdown.
func (r *results) write(w io.Writer) {
	fmt.Fprintln(w, "# clinicctl benchmark results")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Written by `go run ./cmd/clinicbench` (`make bench`) on %s; the run took %s", r.started.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second))
	if r.cfg.quick {
		fmt.Fprint(w, ". **Quick smoke run (-quick): the database is far smaller than the 1 GB the targets are set for**")
	}
	if len(r.cfg.only) > 0 {
		fmt.Fprint(w, ". **Partial run (-only): the other sections were not measured**")
	}
	fmt.Fprintln(w, ". Ratios are clinicctl / reference; every number is a median over the runs. Each tool is one process measured through its own rusage.")
	fmt.Fprintln(w)
	m := r.machine
	fmt.Fprintln(w, "## Machine")
	fmt.Fprintln(w)
	for _, kv := range [][2]string{
		{"CPU", fmt.Sprintf("%s, %d cores", m.CPU, m.Cores)}, {"memory", m.Memory}, {"kernel", m.Kernel},
		{"disk (df of the temp dir)", m.Disk}, {"Go", m.Go}, {"PostgreSQL", m.Postgres},
		{"load average (1, 5, 15 min)", fmt.Sprintf("%s at the start, %s at the end (the machine is shared with other work, which skews the numbers)", m.Load, m.LoadEnd)},
	} {
		fmt.Fprintf(w, "- %s: %s\n", kv[0], kv[1])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Workload")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "- one throwaway PostgreSQL cluster with fsync on, on loopback TCP; every tool uses the same replication role and connection string")
	for _, line := range r.workload {
		fmt.Fprintf(w, "- %s\n", line)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Targets")
	fmt.Fprintln(w)
	if miss := misses(r.sections); len(miss) == 0 {
		fmt.Fprintln(w, "Every target was met.")
	} else {
		fmt.Fprintln(w, "Not met or not measured:")
		fmt.Fprintln(w)
		for _, line := range miss {
			fmt.Fprintf(w, "- %s\n", line)
		}
	}
	fmt.Fprintln(w)
	for _, s := range r.sections {
		s.writeMarkdown(w)
	}
}

// save writes the results file durably.
func (r *results) save(path string) error {
	var buf bytes.Buffer
	r.write(&buf)
	return durable.WriteFile(path, buf.Bytes(), 0o644)
}
