package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

func init() {
	commands["custody"] = command{runCustody, "custody verify --key KEY|FILE [--anchor FILE ...] [--csv FILE ...] [--audit] LOG...   (checks a log with the box's public key alone)"}
}

// repeated is a flag given any number of times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

// maxExport bounds a file custody verify reads whole: an anchor, a key, or
// the page's JSON export of the custody log (years of entries are a few MB).
const maxExport = 32 << 20

func runCustody(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: clinicctl "+commands["custody"].usage)
		return usageError{}
	}
	fs := newFlags("custody verify", stderr)
	keyArg := fs.String("key", "", "the box's public signing key (clinicbox-sign1-...), or a file holding it")
	isAudit := fs.Bool("audit", false, "the files are the audit log (audit.jsonl.N ... audit.jsonl, oldest first), not the custody log")
	var anchorFiles, csvFiles repeated
	fs.Var(&anchorFiles, "anchor", "a head file to check against: custody-head.json from a drive, or the vault's heads (repeatable)")
	fs.Var(&csvFiles, "csv", "the page's CSV export of a month, checked against the log (repeatable)")
	if err := parse(fs, args[1:], "key"); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "custody verify: give the log file: custody.jsonl, or the page's JSON export")
		return usageError{}
	}
	pub, err := readPublicKey(*keyArg)
	if err != nil {
		return err
	}
	var anchors []chain.Head
	for _, f := range anchorFiles {
		hs, err := readHeads(f)
		if err != nil {
			return err
		}
		anchors = append(anchors, hs...)
	}
	keys := chain.Keys{Public: pub}
	var v verdict
	if *isAudit {
		v = verifyAudit(fs.Args(), keys, anchors)
	} else {
		v = verifyCustody(fs.Arg(0), keys, anchors, csvFiles)
	}
	return v.print(stdout, pub, len(anchors))
}

// verdict is what custody verify found.
type verdict struct {
	what     string // "custody log", "audit log"
	first    int64
	last     int64
	n        int
	faults   []string
	notes    []string
	readErrs []string
}

func (v *verdict) problems(ps []chain.Problem) {
	for _, p := range ps {
		if p.Fault() {
			v.faults = append(v.faults, p.String())
		} else {
			v.notes = append(v.notes, p.String())
		}
	}
}

// lines reports the lines a file's reader skipped: a torn last line is a
// note (an append cut short by a power cut), any other a fault.
func (v *verdict) lines(file string, bad []chain.BadLine, lastFile bool) {
	for i, b := range bad {
		if b.Torn && lastFile && i == len(bad)-1 {
			v.notes = append(v.notes, "torn last line: "+file+" "+b.String())
		} else {
			v.faults = append(v.faults, "unreadable line: "+file+" "+b.String())
		}
	}
}

func (v verdict) print(w io.Writer, pub signer.PublicKey, anchors int) error {
	for _, e := range v.readErrs {
		fmt.Fprintln(w, "FAULT", e)
	}
	for _, f := range v.faults {
		fmt.Fprintln(w, "FAULT", f)
	}
	for _, n := range v.notes {
		fmt.Fprintln(w, "NOTE ", n)
	}
	bad := len(v.faults) + len(v.readErrs)
	span := "no entries"
	if v.n > 0 {
		span = fmt.Sprintf("%d entries, %d to %d", v.n, v.first, v.last)
	}
	if bad > 0 {
		fmt.Fprintf(w, "VERDICT: the %s (%s) does NOT verify: %d problems above.\n", v.what, span, bad)
		return fmt.Errorf("custody verify: the %s does not verify", v.what)
	}
	fmt.Fprintf(w, "VERDICT: the %s (%s) verifies with %s, against %d anchors.\n", v.what, span, pub, anchors)
	return nil
}

func verifyAudit(files []string, keys chain.Keys, anchors []chain.Head) verdict {
	v := verdict{what: "audit log"}
	var all []audit.Record
	for i, f := range files {
		recs, bad, err := audit.Load(f)
		if err != nil {
			v.readErrs = append(v.readErrs, err.Error())
			continue
		}
		v.lines(f, bad, i == len(files)-1)
		all = append(all, recs...)
	}
	v.problems(audit.Check(all, keys, anchors))
	if v.n = len(all); v.n > 0 {
		v.first, v.last = all[0].Seq, all[v.n-1].Seq
	}
	return v
}

func verifyCustody(file string, keys chain.Keys, anchors []chain.Head, csvFiles []string) verdict {
	v := verdict{what: "custody log"}
	entries, err := readCustody(file, &v)
	if err != nil {
		v.readErrs = append(v.readErrs, err.Error())
		return v
	}
	v.problems(rotation.Check(entries, keys, anchors))
	if v.n = len(entries); v.n > 0 {
		v.first, v.last = entries[0].Seq, entries[v.n-1].Seq
	}
	for _, f := range csvFiles {
		v.faults = append(v.faults, checkCSV(f, entries)...)
	}
	return v
}

// readCustody reads the custody log file, or the page's JSON export of it
// ({"chain": ..., "entries": [...]}).
func readCustody(file string, v *verdict) ([]rotation.Entry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("custody verify: %w", err)
	}
	defer f.Close()
	var export struct {
		Entries []rotation.Entry `json:"entries"`
	}
	dec := json.NewDecoder(io.LimitReader(f, maxExport))
	if t, err := dec.Token(); err == nil && t == json.Delim('{') {
		if k, err := dec.Token(); err == nil && (k == "chain" || k == "entries") {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			if err := json.NewDecoder(io.LimitReader(f, maxExport)).Decode(&export); err != nil {
				return nil, fmt.Errorf("custody verify: %s is not the page's custody export (%v); give custody.jsonl or the export as downloaded", file, err)
			}
			return export.Entries, nil
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	entries, bad, err := rotation.ReadLog(f)
	v.lines(file, bad, true)
	return entries, err
}

// readPublicKey takes the key itself or a file holding it.
func readPublicKey(arg string) (signer.PublicKey, error) {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(arg)), signer.PublicPrefix) {
		return signer.ParsePublic(arg)
	}
	b, err := readBounded(arg, 64<<10)
	if err != nil {
		return signer.PublicKey{}, fmt.Errorf("custody verify: --key: %w; give the key (%s...) or a file holding it", err, signer.PublicPrefix)
	}
	for _, w := range strings.Fields(string(b)) {
		if strings.HasPrefix(strings.ToLower(w), signer.PublicPrefix) {
			return signer.ParsePublic(w)
		}
	}
	return signer.PublicKey{}, fmt.Errorf("custody verify: %s holds no box signing key (%s...)", arg, signer.PublicPrefix)
}

// readHeads reads an anchor: a heads file ({"heads": [...]}) or one head.
func readHeads(file string) ([]chain.Head, error) {
	b, err := readBounded(file, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("custody verify: --anchor: %w", err)
	}
	var hs chain.Heads
	if err := json.Unmarshal(b, &hs); err == nil && len(hs.Heads) > 0 {
		return hs.Heads, nil
	}
	var h chain.Head
	if err := json.Unmarshal(b, &h); err != nil || h.Log == "" {
		return nil, fmt.Errorf("custody verify: --anchor %s is not a head file (%s from a drive, or the vault's heads)", file, rotation.HeadFile)
	}
	return []chain.Head{h}, nil
}

func readBounded(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = errors.New(file + " is too large")
	}
	return b, err
}

var _ flag.Value = (*repeated)(nil)
