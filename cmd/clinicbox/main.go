// Command clinicbox is the appliance service on the box: flags, settings,
// the real drivers, appliance.Run. SIGTERM stops it cleanly (streaming
// flushed, the drive unmounted) well inside gokrazy's 100 s; it exits 125,
// which gokrazy does not restart, when the settings disable it.
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
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/drivers/smart"
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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("clinicbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settingsPath := fs.String("settings", "/perm/clinicbox/settings.json", "settings file (JSON)")
	stateDir := fs.String("state", "/perm/clinicbox", "directory for the box key, rotation state and custody log")
	runDir := fs.String("run", "/tmp/clinicbox", "directory for drive mount points (tmpfs)")
	listen := fs.String("listen", ":8080", "address of the box's pages on the practice's network")
	console := fs.String("console", "/dev/console", "where the page's setup code is shown to someone at the box (a monitor, the serial port); empty: only in the log")
	loopDrives := fs.String("loop-drives", "", "for tests and demos only: also take loop devices whose image file is in this directory for drives (default: USB drives only)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}
		return 2, err
	}
	fmt.Fprintln(stdout, "clinicbox: starting")
	log := slog.New(slog.NewTextHandler(stdout, nil))
	set, err := loadSettings(*settingsPath)
	if err != nil {
		// First run, or a broken file: say what to do and stay up, so the
		// message is visible on the gokrazy page instead of a restart loop.
		log.Error("not backing up until the settings are fixed", "err", err)
		<-ctx.Done()
		return 0, nil
	}
	if set.Disabled {
		log.Info("disabled in the settings; not starting", "settings", *settingsPath)
		return exitDisabled, nil
	}
	if *loopDrives != "" {
		log.Warn("loop devices attached from this directory are taken for drives (tests and demos only)", "dir", *loopDrives)
	}
	host, _ := os.Hostname()
	notifier, err := appliance.NewNotifier(set, *stateDir, host, log)
	if err != nil {
		log.Error("alerts are off until their settings are fixed", "err", err)
	}
	health := appliance.SMARTHealth{Checker: &smart.Checker{}}
	cfg := appliance.Config{
		Settings: set,
		StateDir: *stateDir,
		Drives:   &appliance.USBDrives{RunDir: *runDir, Log: log, Accept: acceptDrives("/sys", *loopDrives)},
		Health:   health,
		Disks:    health,
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
	node, err := startOffsite(ctx, set, *stateDir, &cfg, log)
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
	var whois func(context.Context, string) (web.Caller, error)
	if node != nil {
		whois = func(ctx context.Context, addr string) (web.Caller, error) {
			p, err := node.WhoIs(ctx, addr)
			return web.Caller{Via: "tailnet", Addr: addr, Node: p.Node, Login: p.Login, Tags: p.Tags}, err
		}
	}
	pages, err := a.NewWeb(nil, whois, func(c *web.Config) {
		c.ShowSetupCode = showOnConsole(*console, log)
		c.Hosts = boxHosts(node)
	})
	if err != nil {
		return 1, err
	}
	var served servers
	if node != nil {
		served.serveTailnet(ctx, node, pages, log)
	}
	if err := served.serveLAN(pages, *listen); err != nil {
		log.Error("the box's pages are not served", "addr", *listen, "err", err)
	}
	// Not a secret: people compare it with what their browser shows.
	log.Info("running", "database", appliance.Redact(set.Database.URL), "state", *stateDir, "pages", *listen,
		"fingerprint", pages.Cert().Fingerprint)
	err = a.Run(ctx)
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	served.shutdown(shut)
	if err != nil {
		return 1, err
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
