package webtest

import (
	"fmt"
	"slices"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/rotation"
)

// SimDrives lists the three drives; the one in the box is plugged.
func (b *Box) SimDrives() []web.SimDrive {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []web.SimDrive
	for _, d := range b.st.Drives {
		out = append(out, web.SimDrive{Name: d.Generation, Plugged: d.Where == "in box"})
	}
	return out
}

// Unplug pulls the named drive out of the box without ejecting it first.
func (b *Box) Unplug(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st.InBox == nil || b.st.InBox.Generation != name {
		return fmt.Errorf("%s is not in the box", name)
	}
	now := b.now()
	b.log.Append(rotation.Entry{Time: now, Drive: IDs[name], Generation: name, Event: string(rotation.Remove), Who: "front desk",
		Decision: rotation.Pulled, Reasons: []string{"pulled out without ejecting first: the last writes may be incomplete"}})
	b.st.InBox = nil
	b.setDrive(name, func(d *status.Drive) { d.Where, d.AwaySince, d.InsertedAt = "offsite", now, time.Time{} })
	b.st.Conditions = []status.Condition{{Name: "no drive", Severity: status.Attention, Since: now,
		Message: "Put " + b.st.Expected + " in the box: it is the drive expected next."}}
	b.st.Panel = status.Panel{Green: "off", Amber: "fast", Red: "off", Buzzer: "two beeps every 10 minutes", Condition: "no drive"}
	b.settle(now)
	return nil
}

// Plug puts the named drive in the box: the expected one is accepted and
// backed up onto; another is a wrong drive.
func (b *Box) Plug(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st.InBox != nil {
		return fmt.Errorf("the box already holds %s; unplug it first", b.st.InBox.Generation)
	}
	if _, ok := IDs[name]; !ok {
		return fmt.Errorf("there is no drive called %s", name)
	}
	now := b.now()
	dec, reasons := rotation.Accepted, []string{name + " is the drive expected next"}
	if name != b.st.Expected {
		dec, reasons = rotation.WrongDrive, []string{fmt.Sprintf("%s was expected, not %s", b.st.Expected, name)}
	}
	b.log.Append(rotation.Entry{Time: now, Drive: IDs[name], Generation: name, Event: string(rotation.Insert), Who: "front desk", Decision: dec, Reasons: reasons})
	b.st.InBox = &status.InBox{Drive: string(IDs[name]), Generation: name, Decision: string(dec)}
	b.setDrive(name, func(d *status.Drive) { d.Where, d.InsertedAt, d.Expected = "in box", now, false })
	if dec == rotation.Accepted {
		b.st.InBox.Writable, b.st.InBox.Activity, b.st.InBox.Progress = true, status.BackingUp, 0.05
		b.st.Conditions = nil
		b.st.Panel = status.Panel{Green: "slow", Amber: "off", Red: "off", Buzzer: "silent"}
		b.st.Swap.Due, b.st.Swap.DueAt = false, now.Add(7*24*time.Hour)
		b.st.Expected = b.longestAway()
	} else {
		b.st.InBox.Activity = status.NotWritten
		b.st.Conditions = []status.Condition{{Name: "wrong drive", Severity: status.Attention, Drive: string(IDs[name]), Since: now,
			Message: fmt.Sprintf("This is %s; the box expected %s. Take it out and put in %s.", name, b.st.Expected, b.st.Expected)}}
		b.st.Panel = status.Panel{Green: "off", Amber: "code 2", Red: "off", Buzzer: "three beeps", Condition: "wrong drive"}
	}
	b.settle(now)
	return nil
}

// settle derives severity, headline, expected marks and recent swaps after
// a change.
func (b *Box) settle(now time.Time) {
	b.st.Severity = status.Worst(b.st.Conditions)
	switch {
	case len(b.st.Conditions) > 0:
		b.st.Headline = b.st.Conditions[0].Message
	case b.st.InBox != nil:
		b.st.Severity = status.Busy
		b.st.Headline = "All good: backing up onto " + b.st.InBox.Generation + "."
	}
	for i := range b.st.Drives {
		b.st.Drives[i].Expected = b.st.Drives[i].Generation == b.st.Expected && b.st.Drives[i].Where != "in box"
	}
	b.st.Swap.Recent = b.recent()
	b.st.Events = append([]status.Event{{Time: now, Kind: "drive", Message: b.st.Headline}}, b.st.Events...)
}

func (b *Box) setDrive(gen string, f func(*status.Drive)) {
	for i := range b.st.Drives {
		if b.st.Drives[i].Generation == gen {
			f(&b.st.Drives[i])
		}
	}
}

// longestAway is the drive away the longest: the one expected next.
func (b *Box) longestAway() string {
	best := ""
	var since time.Time
	for _, d := range b.st.Drives {
		if d.Where != "in box" && (best == "" || d.AwaySince.Before(since)) {
			best, since = d.Generation, d.AwaySince
		}
	}
	return best
}

// recent is the last eight movements from the custody log, newest first.
func (b *Box) recent() []status.Movement {
	var out []status.Movement
	for _, e := range slices.Backward(b.log.Entries()) {
		if len(out) == 8 {
			break
		}
		out = append(out, status.Movement{Time: e.Time, Drive: string(e.Drive), Generation: e.Generation, Event: e.Event, Decision: string(e.Decision), Who: e.Who})
	}
	return out
}
