package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/drive/drivetest"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
	"github.com/clinicbox/clinicbox/rotation"
)

// demoRun is one run of the demo: its flags and what it started.
type demoRun struct {
	dir, listen string
	rate, speed float64
	autopilot   bool
	days        int
	say         func(string, ...any)
	stack       []func() // undone in reverse order when the demo ends
	boxLog      *slog.Logger
	clk         *demoClock
	sim         *drivetest.Drives
	vaultURL    string
	drills      bool // the box runs restore drills (the demo runs as root)
}

// demoFetchProgram is the clinicctl whose wal-fetch a drill's PostgreSQL
// runs; empty means this program. Tests set the binary they built.
var demoFetchProgram string

// runDemo runs the whole box on one machine: a throwaway PostgreSQL with a
// clinic-like workload, the appliance with three simulated drives (and a
// stranger's), its pages in the browser, and optionally an autopilot that
// swaps drives every morning, mistakes included, on an accelerated clock.
// Everything lives in --dir; Ctrl-C stops it all and removes the database.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d, err := parseDemo(args, stdout, stderr)
	if err != nil {
		return err
	}
	defer d.undo()
	db, err := d.startDatabase(ctx)
	if err != nil {
		return err
	}
	box, err := d.startBox(db)
	if err != nil {
		return err
	}
	if err := d.serve(box); err != nil {
		return err
	}
	runCtx := d.run(ctx, box)
	if !d.autopilot {
		d.say("plug and unplug drives on the page; Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}
	return d.pilot(runCtx, box)
}

func parseDemo(args []string, stdout, stderr io.Writer) (*demoRun, error) {
	fs := newFlags("demo", stderr)
	dir := fs.String("dir", "_work/demo", "directory for everything the demo writes")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the box's pages")
	rate := fs.Float64("visits", 5, "clinic visits recorded per second")
	speed := fs.Float64("speed", 720, "clock acceleration: 720 runs a day in two minutes; 1 is real time")
	autopilot := fs.Bool("autopilot", true, "swap drives automatically every morning, with a few mistakes")
	days := fs.Int("days", 0, "stop after the autopilot has run this many days (0: until Ctrl-C)")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	os.Chmod(abs, 0o755) // the database runs as an unprivileged user
	say := func(format string, a ...any) { fmt.Fprintf(stdout, time.Now().Format("15:04:05 ")+format+"\n", a...) }
	return &demoRun{dir: abs, listen: *listen, rate: *rate, speed: *speed, autopilot: *autopilot, days: *days, say: say}, nil
}

// later adds f to what undo runs.
func (d *demoRun) later(f func()) { d.stack = append(d.stack, f) }

// undo stops everything the demo started, last started first.
func (d *demoRun) undo() {
	for i := len(d.stack) - 1; i >= 0; i-- {
		d.stack[i]()
	}
}

// startDatabase starts the throwaway PostgreSQL and its clinic workload.
func (d *demoRun) startDatabase(ctx context.Context) (*pgcluster.Cluster, error) {
	d.say("starting a throwaway PostgreSQL with a clinic schema in %s", d.dir)
	db, err := pgcluster.Start(ctx, pgcluster.Options{Dir: d.dir, Fsync: true})
	if err != nil {
		return nil, err
	}
	d.later(func() {
		db.Stop()
		d.say("database stopped and removed; the drives and the box's state stay in %s", d.dir)
	})
	if err := db.ClinicInit(ctx, 500); err != nil {
		return nil, err
	}
	wctx, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); db.ClinicWorkload(wctx, d.rate, 500) }()
	d.later(func() { stopWork(); wg.Wait() })
	return db, nil
}

// startBox makes the appliance with its simulated drives, its log and the
// offsite vault on loopback.
func (d *demoRun) startBox(db *pgcluster.Cluster) (*appliance.Appliance, error) {
	d.clk = newDemoClock(d.speed)
	set, err := appliance.LoadSettings(strings.NewReader(fmt.Sprintf(`{"database": {"url": %q},
		"rotation": {"time_zone": "America/Chicago", "swap_at": "08:00"}, "nightly_at": "21:00"}`, db.URL())))
	if err != nil {
		return nil, err
	}
	if d.sim, err = drivetest.New(filepath.Join(d.dir, "drives"), "blue", "green", "red", "stranger"); err != nil {
		return nil, err
	}
	tick := 15 * time.Second
	if d.speed > 1 {
		tick = time.Second
	}
	logFile, err := os.OpenFile(filepath.Join(d.dir, "box.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	d.later(func() { logFile.Close() })
	d.boxLog = slog.New(slog.NewTextHandler(logFile, nil))
	boxKey, err := appliance.LoadKey(filepath.Join(d.dir, "state", "box.key"))
	if err != nil {
		return nil, err
	}
	ship, stopVault, vaultURL, err := startDemoVault(filepath.Join(d.dir, "vault"), db.URL(), []string{boxKey.Recipient()}, boxKey.Signer, d.clk.Now, d.boxLog)
	if err != nil {
		return nil, err
	}
	d.later(stopVault)
	d.vaultURL = vaultURL
	drills, err := d.drillConfig()
	if err != nil {
		return nil, err
	}
	return appliance.New(appliance.Config{Settings: set, StateDir: filepath.Join(d.dir, "state"), Drives: d.sim, Offsite: ship,
		Drills: drills, Now: d.clk.Now, Tick: tick, Hostname: "clinicbox-demo", Log: d.boxLog})
}

// drillConfig lets the demo box prove its backups as the box does: each
// drive is drilled once its first backup verified and weekly after, with
// this machine's PostgreSQL, into a scratch in memory (the simulated
// drives are directories, which the kernel cannot encrypt), so the
// restored patient data never lands on this machine's disk. Mounting that
// scratch takes root; without it the demo says that drills are off rather
// than showing a drill not run on every drive.
func (d *demoRun) drillConfig() (*appliance.DrillConfig, error) {
	if os.Geteuid() != 0 {
		d.say("restore drills are off: the demo mounts their scratch in memory, which needs root")
		return nil, nil
	}
	fetch := demoFetchProgram
	if fetch == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("demo: the drills' restore_command needs this program's path: %w", err)
		}
		fetch = exe
	}
	d.drills = true
	return &appliance.DrillConfig{FetchProgram: fetch, RAMScratch: filepath.Join(d.dir, "drill-scratch")}, nil
}

// serve serves the box's pages on the LAN address; this terminal is the
// demo box's screen, where the setup code shows.
func (d *demoRun) serve(box *appliance.Appliance) error {
	pages, err := box.NewWeb(d.sim, nil, func(c *web.Config) {
		c.ShowSetupCode = func(code string) { d.say("the box's setup code (on its screen): %s", code) }
		c.Hosts = web.MachineHosts
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return fmt.Errorf("demo: %w; choose another address with --listen", err)
	}
	srv := &http.Server{Handler: pages.LAN(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(web.SplitTLS(ln, pages.Cert().TLSConfig()))
	d.later(func() { srv.Close() })
	d.say("the box's pages: https://%s (set a password on first visit, with the setup code)", ln.Addr())
	d.say("the browser warns about the box's own certificate: accept it if its SHA-256 fingerprint is %s", pages.Cert().Fingerprint)
	d.say("the box's log: %s; its drives: %s", filepath.Join(d.dir, "box.log"), d.sim.Dir)
	d.say("the offsite vault (on loopback: the demo has no tailnet): %s, storing only ciphertext in %s", d.vaultURL, filepath.Join(d.dir, "vault"))
	return nil
}

// run starts the box and the narration; the box stops when the demo ends.
func (d *demoRun) run(ctx context.Context, box *appliance.Appliance) context.Context {
	runCtx, stopBox := context.WithCancel(ctx)
	boxErr := make(chan error, 1)
	go func() { boxErr <- box.Run(runCtx) }()
	d.later(func() { stopBox(); <-boxErr })
	go narrate(runCtx, box, d.clk, d.say)
	return runCtx
}

// pilot runs the autopilot and, after a set number of days, checks the
// custody log's chain.
func (d *demoRun) pilot(ctx context.Context, box *appliance.Appliance) error {
	p := &pilot{box: box, sim: d.sim, clk: d.clk, say: d.say, drills: d.drills}
	err := p.run(ctx, d.days)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err == nil && d.days > 0 {
		entries, _ := box.Custody()
		chain := "intact"
		if rotation.Verify(entries, box.CustodySealer()) != nil {
			chain = "BROKEN"
		}
		d.say("autopilot done after %d days: custody log has %d entries, chain %s", d.days, len(entries), chain)
	}
	return err
}

// narrate prints the headline whenever it changes, and what the box says
// of its restore drills, which seldom make the headline.
func narrate(ctx context.Context, box *appliance.Appliance, clk *demoClock, say func(string, ...any)) {
	last, lastDrill := "", newestDrillEvent(box.Status()) // drills of an earlier run of the demo are not news
	for ctx.Err() == nil {
		st, err := box.WaitFor(ctx, func(st status.Status) bool {
			return st.Headline != last || newestDrillEvent(st).After(lastDrill)
		})
		if err != nil {
			return
		}
		at := clk.Now().In(clk.virt.Location()).Format("Mon 15:04")
		for _, e := range slices.Backward(st.Events) { // Events are newest first: print the oldest first
			if e.Kind == "drill" && e.Time.After(lastDrill) {
				say("[%s] box: %s", at, e.Message)
			}
		}
		lastDrill = newestDrillEvent(st)
		if st.Headline != last {
			last = st.Headline
			say("[%s] %s: %s", at, st.Severity, st.Headline)
		}
	}
}

// newestDrillEvent is the time of the box's newest event about a drill.
func newestDrillEvent(st status.Status) time.Time {
	for _, e := range st.Events {
		if e.Kind == "drill" {
			return e.Time
		}
	}
	return time.Time{}
}

// demoClock runs faster than real time.
type demoClock struct {
	start, virt time.Time
	speed       float64
}

func newDemoClock(speed float64) *demoClock {
	now := time.Now()
	loc, _ := time.LoadLocation("America/Chicago")
	// Start on a Monday at 06:00 in the practice's time zone, so the first
	// morning comes soon.
	d := now.In(loc)
	for d.Weekday() != time.Monday {
		d = d.AddDate(0, 0, 1)
	}
	virt := time.Date(d.Year(), d.Month(), d.Day(), 6, 0, 0, 0, loc)
	if speed <= 1 {
		virt, speed = now, 1
	}
	return &demoClock{start: now, virt: virt, speed: speed}
}

func (c *demoClock) Now() time.Time {
	return c.virt.Add(time.Duration(float64(time.Since(c.start)) * c.speed))
}

func init() {
	commands["demo"] = command{runDemo, "demo [--dir DIR] [--listen ADDR] [--speed N] [--autopilot=false] [--days N]   (the whole box on one machine)"}
}
