package main

import (
	"context"
	"fmt"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

// pilot plays the front desk in the demo: it enrolls three drives, then
// every morning swaps the drive in the box for the expected one. Some days
// it makes the mistakes staff make: it pulls a drive without pressing the
// button, or plugs in a stranger's drive first.
type pilot struct {
	box *appliance.Appliance
	sim *appliance.SimDrives
	clk *demoClock
	say func(string, ...any)
	gen map[string]string // generation -> simulated drive
}

func (p *pilot) wait(ctx context.Context, ok func(status.Status) bool) (status.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return p.box.WaitFor(ctx, ok)
}

func (p *pilot) run(ctx context.Context, days int) error {
	p.gen = map[string]string{}
	for _, name := range []string{"blue", "green", "red"} {
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
		st, err := p.wait(ctx, func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "streaming" })
		if err != nil {
			return err
		}
		p.gen[st.InBox.Generation] = name
		p.say("front desk: %q is now %s and holds a verified backup", name, st.InBox.Generation)
		if name == "red" {
			break
		}
		if err := p.eject(ctx); err != nil {
			return err
		}
		p.sim.Unplug(name)
	}
	in := "red"
	for day := 1; days == 0 || day <= days; day++ {
		st, err := p.wait(ctx, func(st status.Status) bool { return len(st.Conditions) > 0 && st.Conditions[0].Name == "swap due" })
		if err != nil {
			return err
		}
		p.say("front desk (day %d): %s", day, st.Headline)
		if day%3 == 2 {
			p.say("front desk: pulls %q without pressing the button (a mistake)", in)
		} else if err := p.eject(ctx); err != nil {
			return err
		}
		p.sim.Unplug(in)
		if _, err := p.wait(ctx, func(st status.Status) bool { return st.InBox == nil }); err != nil {
			return err
		}
		if day%3 == 0 {
			p.say("front desk: plugs in a stranger's drive by mistake")
			p.sim.Plug("stranger")
			st, err := p.wait(ctx, func(st status.Status) bool {
				return st.InBox != nil && st.InBox.Decision != "" && st.InBox.Activity != "identifying"
			})
			if err != nil {
				return err
			}
			p.say("box: %s", st.Headline)
			p.sim.Unplug("stranger")
			p.wait(ctx, func(st status.Status) bool { return st.InBox == nil })
		}
		next := p.box.Status().Expected
		in = p.gen[next]
		if in == "" {
			return fmt.Errorf("demo: the box expects %q, which the autopilot does not know", next)
		}
		p.say("front desk: plugs in %s (%q)", next, in)
		p.sim.Plug(in)
		if _, err := p.wait(ctx, func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "streaming" }); err != nil {
			return err
		}
	}
	return nil
}

func (p *pilot) eject(ctx context.Context) error {
	if err := p.box.Do(ctx, appliance.ActEject, "", "front desk (demo)"); err != nil {
		return err
	}
	_, err := p.wait(ctx, func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	return err
}
