package appliance

import (
	"fmt"
	"math"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// condUnknownActivity names the condition shown for an activity this
// version has no words for; TestEveryActivityHasItsCondition keeps it
// unused.
const condUnknownActivity = "busy with the drive"

// activityCondition is the condition the drive's activity shows, if it
// shows one. The switch names every status.Activity.
func (a *Appliance) activityCondition(b *inBox) (status.Condition, bool) {
	c := status.Condition{Name: string(b.activity), Severity: status.Busy, Drive: string(b.dec.Drive)}
	switch b.activity {
	case status.Identifying:
		c.Name, c.Drive, c.Message = "identifying drive", "", "A drive was plugged in; the box is checking which one it is."
	case status.BackingUp:
		p := math.Float64frombits(b.progress.Load())
		c.Message = fmt.Sprintf("Backing up onto %s (%.0f%%). Leave the drive in.", nameOf(b), p*100)
	case status.Verifying:
		c.Message = "Checking the new backup on " + nameOf(b) + ". Leave the drive in."
	case status.Ejecting:
		c.Message = "Ejecting " + nameOf(b) + "; wait for the amber light before taking it out."
	case status.SafeToRemove:
		next := "the next drive"
		if d, ok := a.rot.ExpectedNext(); ok {
			next = d.Generation
		}
		c.Severity = status.Attention
		c.Message = fmt.Sprintf("%s is safe to remove. Take it out, take it offsite, and put in %s.", nameOf(b), next)
		// Out before its swap is due, the drive is asked back as soon as
		// it is out: say so now rather than send it offsite first.
		if due, early := a.policy.EarlyOut(a.rot, a.cfg.Now()); early {
			c.Message = fmt.Sprintf("%s is safe to remove. Its swap is not due until %s: put it back in when you are done.", nameOf(b), due)
		}
	case status.Streaming, status.Idle, status.NotWritten:
		return c, false // the drive's own conditions say the rest
	default:
		c.Name, c.Message = condUnknownActivity, fmt.Sprintf("The box is busy with %s (%s). Leave the drive in.", nameOf(b), b.activity)
	}
	return c, true
}
