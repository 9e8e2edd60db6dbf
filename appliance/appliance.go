package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/drive"
	"github.com/clinicbox/clinicbox/appliance/maint"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/rotation"
)

// Panel shows conditions with lights and sound.
type Panel interface {
	Set(conds []status.Condition)
	State() status.Panel
}

// Button is a press on the front panel's button.
type Button int

// Button presses.
const (
	Ack           Button = iota + 1 // short press: acknowledge; on swap due, eject
	LongPress                       // three seconds: open a remote-support window
	ResetPassword                   // ten seconds: clear the page's password (someone is at the box)
)

// Notifier sends alerts from the status document.
type Notifier interface {
	Update(now time.Time, st status.Status)
}

// Config is what the appliance runs with.
type Config struct {
	Settings *Settings
	// StateDir holds the box key, the rotation state and the custody log:
	// on the box, under /perm.
	StateDir string
	Drives   DriveSource
	Health   Health // nil: health unknown
	// Disks surveys the box's disks that are not backup drives; nil: the
	// status lists none.
	Disks    DiskSurvey
	Panel    Panel // nil: no panel
	Button   <-chan Button
	Notifier Notifier // nil: no alerts
	Offsite  Offsite  // nil: no vault
	// Drills lets the box run restore drills; nil: it carries no
	// PostgreSQL and refuses them.
	Drills *DrillConfig
	// Now is the clock; nil means time.Now. The demo accelerates it.
	Now func() time.Time
	// Tick is how often conditions are evaluated; zero means 15 s.
	Tick time.Duration
	// ClockTrusted reports whether the clock has been set; nil means it
	// is trusted once it shows a year after 2024 (a Pi boots at 1970).
	ClockTrusted func() bool
	// SupportWindow is how long a long press opens remote support; zero
	// means 4 h.
	SupportWindow     time.Duration
	Hostname, Version string
	Log               *slog.Logger
}

// Appliance is the running box.
type Appliance struct {
	cfg    Config
	set    *Settings
	key    *Key
	policy *rotation.Policy
	log    *slog.Logger
	dbURL  string

	// Owned by the loop goroutine.
	rot          rotation.State
	custody      *rotation.Log
	book         book
	box          *inBox
	started      time.Time
	srv          serverCheck
	maint        *maint.Maintainer
	maintRunning bool
	onsets       *onsets // when each condition shown began; acknowledgements
	disks        []status.Disk
	disksAt      time.Time // when the last disk survey started
	diskSurvey   *worker   // the running survey; nil when none
	consent      time.Time

	runCtx  context.Context            // Run's context, for work started by actions
	web     atomic.Pointer[web.Server] // the pages NewWeb made, whose password the button resets
	audit   atomic.Pointer[audit.Log]  // the audit log NewWeb opened, whose head goes on drives and to the vault
	do      chan func()
	poke    chan struct{}
	flushed chan struct{} // WAL reached the drive: the lag changed
	logsNow chan struct{} // an eject: send the logs to the vault now
	history status.History

	mu      sync.Mutex
	st      status.Status
	changed chan struct{}
	wg      sync.WaitGroup
}

// New loads the box's key and state. Settings must be valid.
func New(cfg Config) (*Appliance, error) {
	if cfg.Settings == nil {
		return nil, errors.New("appliance: no settings")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 15 * time.Second
	}
	if cfg.SupportWindow <= 0 {
		cfg.SupportWindow = 4 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ClockTrusted == nil {
		now := cfg.Now
		cfg.ClockTrusted = func() bool { return now().Year() > 2024 }
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("appliance: state directory: %w", err)
	}
	key, err := LoadKey(filepath.Join(cfg.StateDir, "box.key"))
	if err != nil {
		return nil, err
	}
	a := &Appliance{cfg: cfg, set: cfg.Settings, key: key, log: cfg.Log,
		do: make(chan func(), 64), poke: make(chan struct{}, 1), flushed: make(chan struct{}, 1), logsNow: make(chan struct{}, 1), changed: make(chan struct{}),
		onsets: newOnsets()}
	if a.policy, err = cfg.Settings.Policy(key.VerifyDrive); err != nil {
		return nil, err
	}
	if a.dbURL, err = cfg.Settings.DatabaseURL(); err != nil {
		return nil, err
	}
	if err := a.load(); err != nil {
		return nil, err
	}
	ms, err := cfg.Settings.MaintSettings()
	if err != nil {
		return nil, err
	}
	if ms.Enabled {
		a.maint = &maint.Maintainer{Scheduler: maint.Scheduler{Window: ms.Window, Location: a.policy.Calendar.Location},
			Settings: ms, URL: a.dbURL, Now: cfg.Now, Log: cfg.Log}
	}
	return a, nil
}

// Recipients are the keys every backup is encrypted to: the box's and the
// practice's.
func (a *Appliance) Recipients() []string {
	return append([]string{a.key.Recipient()}, a.set.Recipients...)
}

// Run runs the box until ctx ends, then stops streaming, flushes and
// unmounts the drive in the box.
func (a *Appliance) Run(ctx context.Context) error {
	a.started = a.cfg.Now()
	a.runCtx = ctx
	events := make(chan drive.Event, 8)
	srcCtx, stopSrc := context.WithCancel(ctx)
	srcErr := make(chan error, 1)
	go func() { srcErr <- a.cfg.Drives.Run(srcCtx, events) }()
	defer stopSrc()
	tick := time.NewTicker(a.cfg.Tick)
	defer tick.Stop()
	a.sweepScratch()
	a.startOffsite(ctx)
	a.startLogs(ctx)
	a.checkServer(ctx)
	a.evaluate(ctx)
	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case err := <-srcErr:
			if ctx.Err() == nil && err != nil {
				a.event("drives", "cannot watch for drives: "+err.Error())
				a.log.Error("drive watcher stopped", "err", err)
			}
			srcErr = nil
		case ev := <-events:
			if ev.Arrived {
				a.arrived(ctx, ev.Drive)
			} else {
				a.left(ctx, ev.Drive)
			}
		case b := <-a.cfg.Button:
			a.button(ctx, b)
		case f := <-a.do:
			f()
		case <-a.flushed:
		case <-a.poke:
			a.checkServer(ctx)
			a.periodic(ctx)
		case <-tick.C:
			a.checkServer(ctx)
			a.periodic(ctx)
			a.maintenance(ctx)
		}
		a.evaluate(ctx)
	}
}

// post runs f on the loop goroutine; workers report through it.
func (a *Appliance) post(ctx context.Context, f func()) {
	select {
	case a.do <- f:
	case <-ctx.Done():
	}
}

// Poke makes the loop look at the server, run what is due and evaluate
// conditions now (after the clock moved), instead of at the next tick.
func (a *Appliance) Poke() {
	select {
	case a.poke <- struct{}{}:
	default:
	}
}

// Status returns the current status document.
func (a *Appliance) Status() status.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st
}

// History returns lag samples since t.
func (a *Appliance) History(since time.Time) []status.Sample { return a.history.Since(since) }

// WaitFor blocks until the status satisfies ok, or ctx ends.
func (a *Appliance) WaitFor(ctx context.Context, ok func(status.Status) bool) (status.Status, error) {
	for {
		a.mu.Lock()
		st, ch := a.st, a.changed
		a.mu.Unlock()
		if ok(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

func (a *Appliance) publish(st status.Status) {
	a.mu.Lock()
	a.st = st
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
}

// shutdown stops the work on the drive and leaves it unmounted and synced.
func (a *Appliance) shutdown() {
	if b := a.box; b != nil {
		b.stopAll()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if b.mounted {
			// Unmount only: after a restart or an update the drive must
			// still be there, not powered down.
			if err := b.dev.Unmount(ctx); err != nil {
				a.log.Error("unmount on shutdown", "drive", b.dev.Name(), "err", err)
			}
		}
	}
	a.wg.Wait()
}
