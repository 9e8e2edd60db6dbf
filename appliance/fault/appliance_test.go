package fault

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/drive/drivetest"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/rotation"
)

// fakeClock is the appliance's settable clock: a simulated day passes in
// one Set.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// service is the appliance run in this process with simulated drives and
// a fake clock, as the appliance's own tests run it.
type service struct {
	t     *testing.T
	a     *appliance.Appliance
	sim   *drivetest.Drives
	clock *fakeClock
	state string
	stop  func()
}

// startService runs the appliance against c with settings extra (JSON
// members added to the database and rotation settings); edit adjusts the
// configuration before New.
func startService(t *testing.T, c *pgtest.Cluster, extra string, edit func(*appliance.Config)) *service {
	t.Helper()
	top := testenv.SharedDir(t)
	set, err := appliance.LoadSettings(strings.NewReader(`{"database": {"url": "` + c.URL() + `"}, "rotation": {"time_zone": "UTC", "swap_at": "08:00"}` + extra + `}`))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := drivetest.New(filepath.Join(top, "drives"), "blue", "green", "red")
	if err != nil {
		t.Fatal(err)
	}
	s := &service{t: t, sim: sim, clock: &fakeClock{t: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)}, state: filepath.Join(top, "state")}
	cfg := appliance.Config{Settings: set, StateDir: s.state, Drives: sim, Now: s.clock.Now, Tick: time.Hour, Hostname: "clinicbox-fault"}
	if edit != nil {
		edit(&cfg)
	}
	if s.a, err = appliance.New(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.a.Run(ctx) }()
	s.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("appliance Run: %v", err)
		}
	})
	t.Cleanup(s.stop)
	return s
}

// wait blocks until the status satisfies ok.
func (s *service) wait(what string, ok func(status.Status) bool) status.Status {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := s.a.WaitFor(ctx, ok)
	if err != nil {
		b, _ := json.MarshalIndent(st, "", "  ")
		s.t.Fatalf("waiting for %s: %v\nstatus: %s", what, err, b)
	}
	return st
}

// enroll plugs a new drive, enrolls it and waits for its first verified
// backup and the stream onto it; it returns the drive's generation.
func (s *service) enroll(name string) string {
	s.t.Helper()
	if err := s.sim.Plug(name); err != nil {
		s.t.Fatal(err)
	}
	s.wait("drive offered for enrollment", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	})
	if err := s.a.Do(context.Background(), appliance.ActEnroll, "", "fault suite"); err != nil {
		s.t.Fatal(err)
	}
	st := s.wait("enrolled drive backed up and streaming", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Activity == "streaming" && verified(st, st.InBox.Generation) > 0
	})
	return st.InBox.Generation
}

// eject presses for a safe removal and takes the drive out.
func (s *service) eject(name string) {
	s.t.Helper()
	if err := s.a.Do(context.Background(), appliance.ActEject, "", "fault suite"); err != nil {
		s.t.Fatal(err)
	}
	s.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	s.sim.Unplug(name)
	s.wait("no drive in the box", func(st status.Status) bool { return st.InBox == nil })
}

// verified counts a generation's verified backups.
func verified(st status.Status, gen string) int {
	n := 0
	for _, b := range st.Backups {
		if b.Generation == gen && b.Verified == "ok" {
			n++
		}
	}
	return n
}

// condition is the first condition named name whose message holds words.
func condition(st status.Status, name, words string) (status.Condition, bool) {
	for _, c := range st.Conditions {
		if c.Name == name && strings.Contains(c.Message, words) {
			return c, true
		}
	}
	return status.Condition{}, false
}

// event is the newest event whose message holds words.
func event(st status.Status, words string) string {
	for _, e := range st.Events {
		if strings.Contains(e.Message, words) {
			return e.Message
		}
	}
	return ""
}
