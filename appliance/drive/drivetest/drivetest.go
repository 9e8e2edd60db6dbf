// Package drivetest simulates backup drives with directories (drive step of
// the data path), for the demo and for tests where no loop device exists.
package drivetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/drive"
	"github.com/clinicbox/clinicbox/appliance/web"
)

// Drives are drives simulated by directories: Plug and Unplug stand for
// hands at the USB port. A simulated drive's read-only mount is honest only by convention;
// the appliance never writes before it decides to.
type Drives struct {
	Dir string // each subdirectory is a drive

	// EjectRemoves makes an eject take the drive out of the box before
	// it reports, as the kernel deletes a USB disk at the end of one.
	EjectRemoves bool

	mu      sync.Mutex
	out     chan<- drive.Event
	ctx     context.Context
	plugged map[string]*simDrive
	pending []drive.Event // events before Run started
}

// New makes the named drives (directories under dir) if missing.
func New(dir string, names ...string) (*Drives, error) {
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			return nil, fmt.Errorf("drivetest: make drive: %w", err)
		}
	}
	return &Drives{Dir: dir, plugged: map[string]*simDrive{}}, nil
}

// Run delivers plug and unplug events until ctx ends.
func (s *Drives) Run(ctx context.Context, out chan<- drive.Event) error {
	s.mu.Lock()
	s.out, s.ctx = out, ctx
	pending := s.pending
	s.pending = nil
	// Like the kernel's devices at boot, drives already plugged in when
	// the service (re)starts are reported first.
	for _, d := range s.plugged {
		if !slices.ContainsFunc(pending, func(ev drive.Event) bool { return ev.Drive == d }) {
			pending = append([]drive.Event{{Arrived: true, Drive: d}}, pending...)
		}
	}
	s.mu.Unlock()
	for _, ev := range pending {
		select {
		case out <- ev:
		case <-ctx.Done():
		}
	}
	<-ctx.Done()
	s.mu.Lock()
	s.out = nil
	s.mu.Unlock()
	return nil
}

var _ web.Simulator = (*Drives)(nil)

// SimDrives lists the simulated drives for the demo's page.
func (s *Drives) SimDrives() []web.SimDrive {
	ents, _ := os.ReadDir(s.Dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []web.SimDrive
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, web.SimDrive{Name: e.Name(), Plugged: s.plugged[e.Name()] != nil})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Plug puts a drive into the box.
func (s *Drives) Plug(name string) error {
	if name == "" || name != filepath.Base(name) {
		return fmt.Errorf("no simulated drive %q", name)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, name)); err != nil || !fi.IsDir() {
		return fmt.Errorf("no simulated drive %q", name)
	}
	s.mu.Lock()
	if s.plugged[name] != nil {
		s.mu.Unlock()
		return fmt.Errorf("drive %s is already plugged in", name)
	}
	d := &simDrive{name: name, dir: filepath.Join(s.Dir, name), sim: s}
	s.plugged[name] = d
	s.mu.Unlock()
	return s.send(drive.Event{Arrived: true, Drive: d})
}

// Unplug takes a drive out, ejected or not.
func (s *Drives) Unplug(name string) error {
	s.mu.Lock()
	d := s.plugged[name]
	delete(s.plugged, name)
	s.mu.Unlock()
	if d == nil {
		return fmt.Errorf("drive %s is not plugged in", name)
	}
	return s.send(drive.Event{Drive: d})
}

// taken waits until the box has taken every event sent, so that it hears
// of a removal before anything the caller does next: the order a
// kernel's remove and the end of an eject can arrive in.
func (s *Drives) taken(ctx context.Context) {
	s.mu.Lock()
	out := s.out
	s.mu.Unlock()
	for out != nil && len(out) > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}

func (s *Drives) send(ev drive.Event) error {
	s.mu.Lock()
	out, ctx := s.out, s.ctx
	if out == nil {
		s.pending = append(s.pending, ev)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	select {
	case out <- ev:
		return nil
	case <-ctx.Done():
		return errors.New("the box is stopping")
	}
}

type simDrive struct {
	name, dir string
	sim       *Drives
	mu        sync.Mutex
	ejected   bool
}

func (d *simDrive) Name() string { return d.name }

func (d *simDrive) Info() drive.Info { return Info(d.name) }

// Info is what the simulated drive called name says about itself.
func Info(name string) drive.Info {
	return drive.Info{Serial: "SIM-" + name, FSUUID: "sim-" + name, Label: name, Capacity: 64 << 30}
}

func (d *simDrive) Mount(ctx context.Context, writable bool) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ejected {
		return "", errors.New("drivetest: the simulated drive was ejected")
	}
	return d.dir, nil
}

func (d *simDrive) Unmount(ctx context.Context) error { return nil }

func (d *simDrive) Eject(ctx context.Context) (bool, error) {
	d.mu.Lock()
	d.ejected = true
	d.mu.Unlock()
	if d.sim.EjectRemoves {
		if err := d.sim.Unplug(d.name); err != nil {
			return false, err
		}
		d.sim.taken(ctx)
	}
	return true, nil
}
