package panel

import "time"

// Severity orders conditions: the panel shows the most severe one. It is
// the panel's own word, so that the driver needs nothing from the
// appliance; the box maps its status document's severities onto it.
type Severity int

// Severities, least severe first.
const (
	Good      Severity = iota // green steady: all good
	Busy                      // green blinking: backup or verification running
	Attention                 // amber steady and one beep
	Failure                   // red blinking fast and three beeps
)

// Condition is one thing the panel may show. Name, Drive and Since
// together identify one occurrence: an acknowledgement holds until the
// occurrence ends, and one that comes back sounds again.
type Condition struct {
	Name         string
	Drive        string
	Since        time.Time
	Severity     Severity
	Acknowledged bool // staff acknowledged it elsewhere (the page): silent
}

// State is what the panel shows: each light is "off", "steady", "slow",
// "fast" or "code N"; the buzzer is "silent", "quiet hours" or the
// pattern it sounds; Condition is the name of the condition shown.
type State struct {
	Green, Amber, Red, Buzzer string
	Condition                 string
}
