// Command clinicbox is the appliance service on the box, the box step of the
// data path: flags, settings, the real drivers (through appliance/hardware),
// appliance.Run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/hardware"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/drivers/smart"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// exitDisabled tells gokrazy's supervisor not to restart the service.
const exitDisabled = 125

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clinicbox:", err)
	}
	os.Exit(code)
}

// options are the service's flags.
type options struct {
	settings, state, run, listen, console, loopDrives, clockFile string
	pgDir, clinicctl                                             string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	fmt.Fprintln(stdout, "clinicbox: starting")
	log := slog.New(slog.NewTextHandler(stdout, nil))
	setMemoryLimit(log)
	set, err := loadSettings(o.settings)
	if err != nil {
		// First run, or a broken file: say what to do and stay up, so the
		// message is visible on the gokrazy page instead of a restart loop.
		log.Error("not backing up until the settings are fixed", "err", err)
		<-ctx.Done()
		return 0, nil
	}
	if set.Disabled {
		log.Info("disabled in the settings; not starting", "settings", o.settings)
		return exitDisabled, nil
	}
	return o.start(ctx, set, log)
}

// start runs the box with valid settings until ctx ends.
func (o options) start(ctx context.Context, set *appliance.Settings, log *slog.Logger) (int, error) {
	clock, err := o.clock(log)
	if err != nil {
		return 2, err
	}
	cfg := o.config(ctx, set, log)
	if clock != nil {
		cfg.Now = clock.Now
	}
	node, err := startOffsite(ctx, set, o.state, &cfg, log)
	if err != nil {
		log.Error("offsite is off until its settings are fixed", "err", err)
	}
	if node != nil {
		defer node.Close()
	}
	a, err := appliance.New(cfg)
	if err != nil {
		return 1, err
	}
	if clock != nil {
		go clock.watch(ctx, clockPoll, a.Poke, log)
	}
	pages, err := a.NewWeb(nil, tailnetCallers(node), func(c *web.Config) {
		c.ShowSetupCode = showOnConsole(o.console, log)
		c.Hosts = boxHosts(node)
	})
	if err != nil {
		return 1, err
	}
	served := o.serve(ctx, node, pages, log)
	// Not a secret: people compare it with what their browser shows.
	log.Info("running", "database", appliance.Redact(set.Database.URL), "state", o.state, "pages", o.listen,
		"fingerprint", pages.Cert().Fingerprint)
	return stopped(a.Run(ctx), served, log)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("clinicbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.settings, "settings", "/perm/clinicbox/settings.json", "settings file (JSON)")
	fs.StringVar(&o.state, "state", "/perm/clinicbox", "directory for the box key, rotation state and custody log")
	fs.StringVar(&o.run, "run", "/tmp/clinicbox", "directory for drive mount points (tmpfs)")
	fs.StringVar(&o.listen, "listen", ":8080", "address of the box's pages on the practice's network")
	fs.StringVar(&o.console, "console", "/dev/console", "where the page's setup code is shown to someone at the box (a monitor, the serial port); empty: only in the log")
	fs.StringVar(&o.loopDrives, "loop-drives", "", "for tests and demos only: also take loop devices whose image file is in this directory for drives (default: USB drives only)")
	fs.StringVar(&o.pgDir, "pg-dir", "/usr/lib/clinicbox", "directory of the PostgreSQL trees the image carries for restore drills, one pgN per major version")
	fs.StringVar(&o.clinicctl, "clinicctl", "/user/clinicctl", "the clinicctl program a drill's PostgreSQL runs to fetch WAL (restore_command)")
	fs.StringVar(&o.clockFile, "clock-file", "", "for tests and demos only: run on the RFC 3339 time in this file, read again every "+clockPoll.String()+" (write a later time to jump forward; default: the system clock)")
	return o, fs.Parse(args)
}

// clockPoll is how often the -clock-file is read again.
const clockPoll = 50 * time.Millisecond

// clock is the controlled clock -clock-file asks for; nil: the system's.
func (o options) clock(log *slog.Logger) (*fileClock, error) {
	if o.clockFile == "" {
		return nil, nil
	}
	c, err := openFileClock(o.clockFile)
	if err != nil {
		return nil, err
	}
	log.Warn("running on the time in the clock file (tests and demos only)", "file", o.clockFile, "now", c.Now().Format(time.RFC3339))
	return c, nil
}

// config wires the real drivers, the panel and the alerts to the
// appliance; what cannot start is logged and left out.
func (o options) config(ctx context.Context, set *appliance.Settings, log *slog.Logger) appliance.Config {
	if o.loopDrives != "" {
		log.Warn("loop devices attached from this directory are taken for drives (tests and demos only)", "dir", o.loopDrives)
	}
	host, _ := os.Hostname()
	notifier, err := appliance.NewNotifier(set, o.state, host, log)
	if err != nil {
		log.Error("alerts are off until their settings are fixed", "err", err)
	}
	health := hardware.SMARTHealth{Checker: &smart.Checker{}}
	cfg := appliance.Config{
		Settings: set,
		StateDir: o.state,
		Drives:   &hardware.USBDrives{RunDir: o.run, Log: log, Accept: acceptDrives("/sys", o.loopDrives)},
		Health:   health,
		Disks:    health,
		Drills:   drillConfig(o.pgDir, o.clinicctl, o.state, log),
		Log:      log,
		Version:  version(),
	}
	if p, buttons := startPanel(ctx, set, log); p != nil {
		cfg.Panel, cfg.Button = p, buttons
	}
	if notifier != nil {
		cfg.Notifier = notifier
		go notifier.Run(ctx)
	}
	return cfg
}

// tailnetCallers tells the pages who calls over the tailnet; nil without
// a tailnet node.
func tailnetCallers(node *tailnet.Node) func(context.Context, string) (web.Caller, error) {
	if node == nil {
		return nil
	}
	return func(ctx context.Context, addr string) (web.Caller, error) {
		p, err := node.WhoIs(ctx, addr)
		return web.Caller{Via: "tailnet", Addr: addr, Node: p.Node, Login: p.Login, Tags: p.Tags}, err
	}
}

// lanPagesLine is logged with the address the LAN pages listen on (the
// fault suite runs the service on port 0 and reads it there).
const lanPagesLine = "pages on the practice's network"

// serve serves the pages on the tailnet, when there is a node, and on the
// practice's network.
func (o options) serve(ctx context.Context, node *tailnet.Node, pages *web.Server, log *slog.Logger) *servers {
	var served servers
	if node != nil {
		served.serveTailnet(ctx, node, pages, log)
	}
	addr, err := served.serveLAN(pages, o.listen)
	if err != nil {
		log.Error("the box's pages are not served", "addr", o.listen, "err", err)
	} else {
		log.Info(lanPagesLine, "addr", addr.String())
	}
	return &served
}

// stopped shuts the pages down after the appliance returned runErr and
// says how the service ends.
func stopped(runErr error, served *servers, log *slog.Logger) (int, error) {
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	served.shutdown(shut)
	if runErr != nil {
		return 1, runErr
	}
	log.Info("stopped cleanly")
	return 0, nil
}

func loadSettings(path string) (*appliance.Settings, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no settings at %s: copy the example from the README to %s (over the network: gokrazy's update, or the /perm partition) and restart", path, filepath.Dir(path))
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return appliance.LoadSettings(f)
}
