package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

func runList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("list", stderr)
	repoDir := fs.String("repo", "", "repository directory")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args, "repo"); err != nil {
		return err
	}
	repo, err := archive.Open(*repoDir)
	if err != nil {
		return err
	}
	s, err := repo.Summarize()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	fmt.Fprintf(stdout, "repository %s: database system %s\n\n", repo.Dir, s.Info.SystemID)
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKUP\tTAKEN\tTIMELINE\tSTART LSN\tEND LSN\tSTORED\tVERIFIED")
	for _, b := range s.Backups {
		var size int64
		for _, f := range b.Files {
			size += f.Size
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", b.ID, b.End.Local().Format(time.DateTime), b.Timeline, b.StartLSN, b.EndLSN, mb(size), verified(b))
	}
	tw.Flush()
	for _, id := range s.Incomplete {
		fmt.Fprintf(stdout, "incomplete backup %s (interrupted; not usable, removed by the next backup)\n", id)
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAL TIMELINE\tFROM\tTO\tSEGMENTS\tSTORED")
	for _, w := range s.WAL {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", w.Timeline, w.Start, w.End, w.Segments, mb(w.Bytes))
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	if len(s.Windows) == 0 {
		fmt.Fprintln(stdout, "recoverable: nothing yet (no backup with its WAL)")
	}
	for _, w := range s.Windows {
		fmt.Fprintf(stdout, "recoverable: %s .. %s (timeline %d, from backup %s)\n",
			w.FromTime.Local().Format(time.DateTime), w.ToTime.Local().Format(time.DateTime), w.Timeline, w.Backup)
	}
	return nil
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func verified(b *archive.Backup) string {
	switch {
	case b.Verified == nil:
		return "never"
	case b.Verified.OK:
		return "ok " + b.Verified.Time.Local().Format(time.DateTime)
	}
	return "FAILED " + b.Verified.Time.Local().Format(time.DateTime)
}
