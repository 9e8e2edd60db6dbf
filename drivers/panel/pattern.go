package panel

import "time"

// Pattern is how an output switches over time, from the moment its
// condition appeared: Count pulses of On then Off, then nothing until the
// cycle repeats after Cycle. Count zero blinks forever with period On+Off;
// On zero is off; Off zero with Count zero is steady on. Cycle zero with
// Count > 0 plays the pulses once.
type Pattern struct {
	On, Off time.Duration
	Count   int
	Cycle   time.Duration
}

// The patterns people know from NAS boxes and UPSes.
var (
	Off    = Pattern{}
	Steady = Pattern{On: time.Hour}
	Slow   = Pattern{On: time.Second, Off: time.Second}
	Fast   = Pattern{On: 200 * time.Millisecond, Off: 200 * time.Millisecond}
	// OneBeep is one short beep, repeated every 15 minutes until the
	// condition is acknowledged.
	OneBeep = Pattern{On: 150 * time.Millisecond, Off: 150 * time.Millisecond, Count: 1, Cycle: 15 * time.Minute}
	// ThreeBeeps are three beeps, repeated every minute until acknowledged.
	ThreeBeeps = Pattern{On: 150 * time.Millisecond, Off: 150 * time.Millisecond, Count: 3, Cycle: time.Minute}
)

// Code is a blink code: n blinks, then a two-second pause.
func Code(n int) Pattern {
	return Pattern{On: 300 * time.Millisecond, Off: 300 * time.Millisecond, Count: n, Cycle: time.Duration(n)*600*time.Millisecond + 2*time.Second}
}

// forever is returned as "no further change".
const forever = time.Duration(1<<63 - 1)

// at returns the output's level e after the pattern began, and how long it
// stays so.
func (p Pattern) at(e time.Duration) (bool, time.Duration) {
	switch {
	case p.On <= 0:
		return false, forever
	case p.Off <= 0 && p.Count == 0:
		return true, forever
	}
	period := p.On + p.Off
	if p.Count == 0 {
		pos := e % period
		if pos < p.On {
			return true, p.On - pos
		}
		return false, period - pos
	}
	pulses := time.Duration(p.Count) * period
	pos := e
	if p.Cycle > 0 {
		pos = e % p.Cycle
	}
	if pos >= pulses {
		if p.Cycle <= 0 {
			return false, forever
		}
		return false, p.Cycle - pos
	}
	in := pos % period
	if in < p.On {
		return true, p.On - in
	}
	return false, period - in
}

// String names a light pattern as the status document does.
func (p Pattern) String() string {
	switch {
	case p.On <= 0:
		return "off"
	case p == Steady:
		return "steady"
	case p == Slow:
		return "slow"
	case p == Fast:
		return "fast"
	case p.Count > 0 && p.On == 300*time.Millisecond:
		return "code " + itoa(p.Count)
	case p == OneBeep:
		return "one short beep"
	case p == ThreeBeeps:
		return "three beeps every minute"
	}
	return "blinking"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}
