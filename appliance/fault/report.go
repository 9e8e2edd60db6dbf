// Package fault tries the failures a clinic will actually have along the
// whole data path (a killed service, a pulled or full or read-only drive,
// power loss, a restarted or promoted database, hostile input) against the
// real backup engine, and writes RELIABILITY.md from what happened.
package fault

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Row is one fault or input in the report.
type Row struct {
	Fault    string
	Tries    int
	Failures int      // tries whose test failed
	Outcomes []string // what the box did, distinct, in the order seen
	Lost     []string // what was lost, distinct; empty means nothing
}

// Collector gathers what each try of each fault did. The zero value is
// ready to use; it is safe for concurrent use.
type Collector struct {
	mu   sync.Mutex
	rows map[string]*Row
}

// Add records one try of a fault: what the box did and what was lost
// (empty for nothing).
func (c *Collector) Add(fault, outcome, lost string, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows == nil {
		c.rows = map[string]*Row{}
	}
	r := c.rows[fault]
	if r == nil {
		r = &Row{Fault: fault}
		c.rows[fault] = r
	}
	r.Tries++
	if failed {
		r.Failures++
	}
	r.Outcomes = appendNew(r.Outcomes, outcome)
	r.Lost = appendNew(r.Lost, lost)
}

func appendNew(list []string, s string) []string {
	if s == "" {
		return list
	}
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Rows returns the rows sorted by fault name.
func (c *Collector) Rows() []Row {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Row, 0, len(c.rows))
	for _, r := range c.rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fault < out[j].Fault })
	return out
}

// Machine describes where the suite ran.
type Machine struct {
	Host, Kernel, Go, PostgreSQL string
	CPUs                         int
	Date                         time.Time
	Command                      string // how to run the suite again
}

// Attack is a hostile input that a package's own tests try, outside the
// fault suite: what was tried, what the box did, and the test that fails
// if it stops doing so.
type Attack struct {
	Input, Outcome, Test string
}

// WriteMarkdown writes the report: the machine, one table row per fault
// with its tries, what the box did and what was lost, then notes on how
// faults were produced and what the suite does not cover.
func WriteMarkdown(w io.Writer, m Machine, rows []Row, attacks []Attack, notes []string) error {
	var b strings.Builder
	b.WriteString("# Reliability\n\n")
	b.WriteString("What clinicbox did when things went wrong, written by the fault suite in `appliance/fault` " +
		"(`" + m.Command + "`). Every fault ran against a real PostgreSQL under a running workload unless the row says otherwise. " +
		"\"Lost\" compares what the box had reported durable with what a restore or a verification found; the goal is nothing.\n\n")
	fmt.Fprintf(&b, "Run on %s (%s, %d CPUs, Linux %s, %s, PostgreSQL %s).\n\n",
		m.Date.UTC().Format("2006-01-02 15:04 MST"), m.Host, m.CPUs, m.Kernel, m.Go, m.PostgreSQL)
	writeRows(&b, rows)
	if len(attacks) > 0 {
		b.WriteString("\n## Tried as an attacker would\n\n")
		b.WriteString("Hostile input tried by the packages' own tests (run by every `make test`); each test fails if the box stops doing what the row says.\n\n")
		b.WriteString("| Attack or hostile input | What the box did | Test | Lost |\n")
		b.WriteString("| --- | --- | --- | --- |\n")
		for _, a := range attacks {
			fmt.Fprintf(&b, "| %s | %s | %s | nothing |\n", cell(a.Input), cell(a.Outcome), cell(a.Test))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n## How the faults were made, and what is not covered\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRows writes the table of faults: tries, what the box did, lost.
func writeRows(b *strings.Builder, rows []Row) {
	b.WriteString("| Fault or input | Tries | What the box did | Lost |\n")
	b.WriteString("| --- | ---: | --- | --- |\n")
	for _, r := range rows {
		tries := fmt.Sprint(r.Tries)
		if r.Failures > 0 {
			tries = fmt.Sprintf("%d (**%d failed**)", r.Tries, r.Failures)
		}
		lost := "nothing"
		if len(r.Lost) > 0 {
			lost = strings.Join(r.Lost, "; ")
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", cell(r.Fault), tries, cell(strings.Join(r.Outcomes, "; ")), cell(lost))
	}
}

// Torture is a torture run: how long it took, how loaded the machine
// was, and how many rounds each test ran.
type Torture struct {
	Took             time.Duration
	LoadBefore, Load string // /proc/loadavg at the start and at the end
	Rounds           map[string]int
}

// WriteTorture writes the summary of a torture run: the machine, the
// rounds per test, the faults by kind with what was lost, ready to paste
// into RELIABILITY.md.
func WriteTorture(w io.Writer, m Machine, run Torture, rows []Row) error {
	var b strings.Builder
	b.WriteString("# Torture run\n\n")
	fmt.Fprintf(&b, "`%s` on %s (%s, %d CPUs, Linux %s, %s, PostgreSQL %s): %s; load average (1, 5, 15 min) %s at the start, %s at the end.\n\n",
		m.Command, m.Date.UTC().Format("2006-01-02 15:04 MST"), m.Host, m.CPUs, m.Kernel, m.Go, m.PostgreSQL,
		run.Took.Round(time.Second), run.LoadBefore, run.Load)
	b.WriteString("| Test | Rounds |\n| --- | ---: |\n")
	names := make([]string, 0, len(run.Rounds))
	total := 0
	for n, r := range run.Rounds {
		names = append(names, n)
		total += r
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "| %s | %d |\n", n, run.Rounds[n])
	}
	fmt.Fprintf(&b, "| all | %d |\n\n", total)
	tries, failed, lost := 0, 0, 0
	for _, r := range rows {
		tries, failed = tries+r.Tries, failed+r.Failures
		if len(r.Lost) > 0 {
			lost++
		}
	}
	fmt.Fprintf(&b, "%d faults of %d kinds; %d tries failed; %d kinds lost something.\n\n", tries, len(rows), failed, lost)
	writeRows(&b, rows)
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps a table cell on one line and its pipes literal.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
