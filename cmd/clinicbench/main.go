// Command clinicbench measures clinicctl along the data path, from the
// server to a restore, against PostgreSQL's own tools (pg_basebackup,
// pg_receivewal, tar with a cp restore_command) on one machine and one
// pgbench database, and writes the comparison with the machine's description
// to bench/RESULTS.md.
//
//	go run ./cmd/clinicbench [-scale N] [-runs N] [-clinic-mb N] [-clinic-days N] [-out bench/RESULTS.md] [-quick] [-only backlog,live] [-drive-mbps 30]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config is what the flags choose.
type config struct {
	scale    int             // pgbench scale; 70 is about 1.05 GB
	runs     int             // runs per measurement; the tables show medians
	out      string          // the results file
	quick    bool            // a small smoke run
	walMB    int             // size of the WAL backlog and of the WAL replayed by restores
	liveFor  time.Duration   // how long streamers run under load
	rate     int             // pgbench transactions per second during live streaming
	only     map[string]bool // sections to run; empty means all
	clinicMB int             // size of the clinic dataset
	// clinicDays is how many days of clinic workload the long clinic
	// backlog holds.
	clinicDays int
	weekMB     int // size of the clinic dataset of the offsite week
	// driveMBps, when positive, drains the backlogs a second time onto a
	// drive whose writes are held to this many MB/s.
	driveMBps int
}

// sectionNames are the measurements -only can pick, in the order they run.
var sectionNames = []string{"base", "backlog", "live", "verify", "restore", "offsite", "clinic-base", "clinic-backlog", "clinic-backlog-days", "drill", "offsite-week", "vault-scale"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "clinicbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("clinicbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{}
	fs.IntVar(&cfg.scale, "scale", 70, "pgbench scale (70 is about 1.05 GB of data)")
	fs.IntVar(&cfg.runs, "runs", 3, "runs of each measurement (medians are reported)")
	fs.StringVar(&cfg.out, "out", "bench/RESULTS.md", "results file")
	fs.BoolVar(&cfg.quick, "quick", false, "smoke run: small database, one run, short load")
	fs.IntVar(&cfg.walMB, "wal-mb", 400, "MB of WAL in the backlog and in the restore's replay")
	fs.DurationVar(&cfg.liveFor, "live", 60*time.Second, "how long the streamers run under pgbench load")
	fs.IntVar(&cfg.clinicMB, "clinic-mb", 2000, "MB of clinic dataset for the clinic-base and clinic-backlog sections")
	fs.IntVar(&cfg.clinicDays, "clinic-days", 8, "days of clinic workload in the clinic-backlog-days section (8 days of the 2 GB dataset are about 500 MB of WAL)")
	fs.IntVar(&cfg.weekMB, "week-mb", 300, "MB of clinic dataset for the offsite-week section")
	fs.IntVar(&cfg.driveMBps, "drive-mbps", 0, "also drain the backlogs onto a loop-device drive whose writes are held to this many MB/s (30 is a USB-2 drive; needs root and cgroup block I/O control); 0 does not")
	fs.IntVar(&cfg.rate, "rate", 500, "pgbench transactions per second during live streaming")
	only := fs.String("only", "", "comma-separated sections to run, of "+strings.Join(sectionNames, ",")+" (verify needs base); empty runs all")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *only != "" {
		cfg.only = map[string]bool{}
		for _, name := range strings.Split(*only, ",") {
			if !slices.Contains(sectionNames, name) {
				return cfg, fmt.Errorf("-only: unknown section %q (known: %s)", name, strings.Join(sectionNames, ","))
			}
			cfg.only[name] = true
		}
	}
	if cfg.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, quick := range map[string]func(){
			"scale": func() { cfg.scale = 5 }, "runs": func() { cfg.runs = 1 },
			"wal-mb": func() { cfg.walMB = 48 }, "live": func() { cfg.liveFor = 10 * time.Second },
			"clinic-mb": func() { cfg.clinicMB = 40 }, "clinic-days": func() { cfg.clinicDays = 2 }, "week-mb": func() { cfg.weekMB = 20 },
		} {
			if !set[name] {
				quick()
			}
		}
	}
	return cfg, cfg.validate()
}

// validate says which flags are out of range.
func (cfg config) validate() error {
	for _, n := range []int{cfg.scale, cfg.runs, cfg.walMB, cfg.clinicMB, cfg.clinicDays, cfg.weekMB} {
		if n < 1 {
			return errFlagRange
		}
	}
	if cfg.liveFor <= 0 || cfg.driveMBps < 0 {
		return errFlagRange
	}
	return nil
}

var errFlagRange = errors.New("-scale, -runs, -wal-mb, -live, -clinic-mb, -clinic-days and -week-mb must be positive, -drive-mbps not negative")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	// Cancelling kills every child still running when run returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := time.Now()
	b, err := newBench(ctx, cfg, stderr)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		return err
	}
	measures := map[string]func(context.Context) *section{
		"base": b.baseBackup, "backlog": b.backlog, "live": b.live, "verify": b.verify, "restore": b.restore,
		"offsite": b.offsite, "clinic-base": b.clinicBase, "clinic-backlog": b.clinicBacklog, "clinic-backlog-days": b.clinicBacklogDays, "drill": b.drill, "offsite-week": b.offsiteWeek,
		"vault-scale": b.vaultScale,
	}
	var sections []*section
	for _, name := range sectionNames {
		if len(cfg.only) == 0 || cfg.only[name] {
			sections = append(sections, measures[name](ctx))
		}
	}
	sections = append(sections, b.memory())
	b.machine.LoadEnd = loadAverage()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; %s not written", cfg.out)
	}
	res := &results{cfg: cfg, started: started, took: time.Since(started), machine: b.machine, workload: b.workload(), sections: sections}
	if err := res.save(cfg.out); err != nil {
		return err
	}
	res.write(stdout)
	fmt.Fprintf(stderr, "results written to %s\n", cfg.out)
	if m := misses(sections); len(m) > 0 {
		return fmt.Errorf("%d targets missed or measurements not done", len(m))
	}
	return nil
}
