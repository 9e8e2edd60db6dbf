package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/drive/drivetest"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

// pilot plays the front desk in the demo: it enrolls three drives, then
// every morning swaps the drive in the box for the expected one. Some days
// it makes the mistakes staff make: it pulls a drive without pressing the
// button, or plugs in a stranger's drive first.
type pilot struct {
	box *appliance.Appliance
	sim *drivetest.Drives
	clk *demoClock
	say func(string, ...any)
	gen map[string]string // generation -> simulated drive
	// drills: the box drills each drive once its first backup verified;
	// the autopilot lets the first drive's drill finish before the first
	// swap.
	drills bool
}

func (p *pilot) wait(ctx context.Context, ok func(status.Status) bool) (status.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return p.box.WaitFor(ctx, ok)
}

func (p *pilot) run(ctx context.Context, days int) error {
	if err := p.enrollAll(ctx); err != nil {
		return err
	}
	if err := p.awaitDrill(ctx); err != nil {
		return err
	}
	in := "red"
	for day := 1; days == 0 || day <= days; day++ {
		next, err := p.day(ctx, day, in)
		if err != nil {
			return err
		}
		in = next
	}
	return nil
}

// enrollAll enrolls the three drives one after the other and leaves the
// last one, "red", in the box.
func (p *pilot) enrollAll(ctx context.Context) error {
	p.gen = map[string]string{}
	for _, name := range []string{"blue", "green", "red"} {
		if err := p.enroll(ctx, name); err != nil {
			return err
		}
		if name == "red" {
			break
		}
		if err := p.eject(ctx); err != nil {
			return err
		}
		p.sim.Unplug(name)
	}
	return nil
}

// enroll plugs in a new drive, enrolls it and waits for its first backup.
func (p *pilot) enroll(ctx context.Context, name string) error {
	p.say("front desk: plugging in new drive %q", name)
	if err := p.sim.Plug(name); err != nil {
		return err
	}
	if _, err := p.wait(ctx, func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	}); err != nil {
		return err
	}
	if err := p.box.Do(ctx, appliance.ActEnroll, "", "front desk (demo)"); err != nil {
		return err
	}
	st, err := p.wait(ctx, streaming)
	if err != nil {
		return err
	}
	p.gen[st.InBox.Generation] = name
	p.say("front desk: %q is now %s and holds a verified backup", name, st.InBox.Generation)
	return nil
}

// day waits for the swap, takes out the drive in (every third day, on day
// 2, 5, ..., without the button), plugs a stranger's drive in on every
// third day, and puts in the expected drive, which it returns.
func (p *pilot) day(ctx context.Context, day int, in string) (string, error) {
	st, err := p.wait(ctx, func(st status.Status) bool {
		return len(st.Conditions) > 0 && rotation.Kind(st.Conditions[0].Name) == rotation.SwapDue
	})
	if err != nil {
		return "", err
	}
	p.say("front desk (day %d): %s", day, st.Headline)
	if day%3 == 2 {
		p.say("front desk: pulls %q without pressing the button (a mistake)", in)
	} else if err := p.eject(ctx); err != nil {
		return "", err
	}
	p.sim.Unplug(in)
	if _, err := p.wait(ctx, empty); err != nil {
		return "", err
	}
	if day%3 == 0 {
		if err := p.stranger(ctx); err != nil {
			return "", err
		}
	}
	next := p.box.Status().Expected
	in = p.gen[next]
	if in == "" {
		return "", fmt.Errorf("demo: the box expects %q, which the autopilot does not know", next)
	}
	p.say("front desk: plugs in %s (%q)", next, in)
	p.sim.Plug(in)
	if _, err := p.wait(ctx, streaming); err != nil {
		return "", err
	}
	return in, nil
}

// stranger plugs in a drive the box does not know, shows what the box
// says, and takes it out again.
func (p *pilot) stranger(ctx context.Context) error {
	p.say("front desk: plugs in a stranger's drive by mistake")
	p.sim.Plug("stranger")
	st, err := p.wait(ctx, func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision != "" && st.InBox.Activity != status.Identifying
	})
	if err != nil {
		return err
	}
	p.say("box: %s", st.Headline)
	p.sim.Unplug("stranger")
	p.wait(ctx, empty)
	return nil
}

// awaitDrill waits for the box's first restore drill of the drive in the
// box, which starts once its first backup verified: the front desk leaves
// the drive in until the drill has finished, even past the morning swap
// on a fast clock. It goes on without waiting when the swap is due and no
// drill runs: the box drills when it can, not when the autopilot asks.
func (p *pilot) awaitDrill(ctx context.Context) error {
	if !p.drills {
		return nil
	}
	drive := ""
	if in := p.box.Status().InBox; in != nil {
		drive = in.Drive
	}
	_, err := p.wait(ctx, func(st status.Status) bool {
		if slices.ContainsFunc(st.Drills, func(d status.Drill) bool { return d.Drive == drive }) {
			return true
		}
		return st.Swap.Due && !slices.ContainsFunc(st.Conditions, func(c status.Condition) bool { return c.Name == appliance.CondDrilling })
	})
	return err
}

func streaming(st status.Status) bool {
	return st.InBox != nil && st.InBox.Activity == status.Streaming
}

func empty(st status.Status) bool { return st.InBox == nil }

func (p *pilot) eject(ctx context.Context) error {
	if err := p.box.Do(ctx, appliance.ActEject, "", "front desk (demo)"); err != nil {
		return err
	}
	_, err := p.wait(ctx, func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == status.SafeToRemove })
	return err
}
