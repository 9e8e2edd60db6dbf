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
	"strings"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
	"github.com/clinicbox/clinicbox/rotation"
)

// runDemo runs the whole box on one machine: a throwaway PostgreSQL with a
// clinic-like workload, the appliance with three simulated drives (and a
// stranger's), its pages in the browser, and optionally an autopilot that
// swaps drives every morning, mistakes included, on an accelerated clock.
// Everything lives in --dir; Ctrl-C stops it all and removes the database.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dir := fs.String("dir", "_work/demo", "directory for everything the demo writes")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the box's pages")
	rate := fs.Float64("visits", 5, "clinic visits recorded per second")
	speed := fs.Float64("speed", 720, "clock acceleration: 720 runs a day in two minutes; 1 is real time")
	autopilot := fs.Bool("autopilot", true, "swap drives automatically every morning, with a few mistakes")
	days := fs.Int("days", 0, "stop after the autopilot has run this many days (0: until Ctrl-C)")
	if err := parse(fs, args); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	os.Chmod(abs, 0o755) // the database runs as an unprivileged user
	say := func(format string, a ...any) { fmt.Fprintf(stdout, time.Now().Format("15:04:05 ")+format+"\n", a...) }

	say("starting a throwaway PostgreSQL with a clinic schema in %s", abs)
	db, err := pgcluster.Start(ctx, pgcluster.Options{Dir: abs, Fsync: true})
	if err != nil {
		return err
	}
	defer func() { db.Stop(); say("database stopped and removed; the drives and the box's state stay in %s", abs) }()
	if err := db.ClinicInit(ctx, 500); err != nil {
		return err
	}
	wctx, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); db.ClinicWorkload(wctx, *rate, 500) }()
	defer func() { stopWork(); wg.Wait() }()

	clk := newDemoClock(*speed)
	set, err := appliance.LoadSettings(strings.NewReader(fmt.Sprintf(`{"database": {"url": %q},
		"rotation": {"time_zone": "America/Chicago", "swap_at": "08:00"}, "nightly_at": "21:00"}`, db.URL())))
	if err != nil {
		return err
	}
	sim, err := appliance.NewSimDrives(filepath.Join(abs, "drives"), "blue", "green", "red", "stranger")
	if err != nil {
		return err
	}
	tick := 15 * time.Second
	if *speed > 1 {
		tick = time.Second
	}
	logFile, err := os.OpenFile(filepath.Join(abs, "box.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	boxLog := slog.New(slog.NewTextHandler(logFile, nil))
	boxKey, err := appliance.LoadKey(filepath.Join(abs, "state", "box.key"))
	if err != nil {
		return err
	}
	ship, stopVault, vaultURL, err := startDemoVault(filepath.Join(abs, "vault"), db.URL(), []string{boxKey.Recipient()}, boxKey.Signer, clk.Now, boxLog)
	if err != nil {
		return err
	}
	defer stopVault()
	box, err := appliance.New(appliance.Config{Settings: set, StateDir: filepath.Join(abs, "state"), Drives: sim, Offsite: ship,
		Now: clk.Now, Tick: tick, Hostname: "clinicbox-demo", Log: boxLog})
	if err != nil {
		return err
	}
	// This terminal is the demo box's screen: the setup code shows here.
	pages, err := box.NewWeb(sim, nil, func(c *web.Config) {
		c.ShowSetupCode = func(code string) { say("the box's setup code (on its screen): %s", code) }
		c.Hosts = web.MachineHosts
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: %w; choose another address with --listen", err)
	}
	srv := &http.Server{Handler: pages.LAN(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(web.SplitTLS(ln, pages.Cert().TLSConfig()))
	defer srv.Close()
	say("the box's pages: https://%s (set a password on first visit, with the setup code)", ln.Addr())
	say("the browser warns about the box's own certificate: accept it if its SHA-256 fingerprint is %s", pages.Cert().Fingerprint)
	say("the box's log: %s; its drives: %s", filepath.Join(abs, "box.log"), sim.Dir)
	say("the offsite vault (on loopback: the demo has no tailnet): %s, storing only ciphertext in %s", vaultURL, filepath.Join(abs, "vault"))

	runCtx, stopBox := context.WithCancel(ctx)
	boxErr := make(chan error, 1)
	go func() { boxErr <- box.Run(runCtx) }()
	defer func() { stopBox(); <-boxErr }()
	go narrate(runCtx, box, clk, say)

	if !*autopilot {
		say("plug and unplug drives on the page; Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}
	p := &pilot{box: box, sim: sim, clk: clk, say: say}
	err = p.run(runCtx, *days)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err == nil && *days > 0 {
		entries, _ := box.Custody()
		chain := "intact"
		if rotation.Verify(entries, box.CustodySealer()) != nil {
			chain = "BROKEN"
		}
		say("autopilot done after %d days: custody log has %d entries, chain %s", *days, len(entries), chain)
	}
	return err
}

// narrate prints the headline whenever it changes.
func narrate(ctx context.Context, box *appliance.Appliance, clk *demoClock, say func(string, ...any)) {
	last := ""
	for ctx.Err() == nil {
		st, err := box.WaitFor(ctx, func(st status.Status) bool { return st.Headline != last })
		if err != nil {
			return
		}
		last = st.Headline
		say("[%s] %s: %s", clk.Now().In(clk.virt.Location()).Format("Mon 15:04"), st.Severity, st.Headline)
	}
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
