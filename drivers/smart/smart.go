// Package smart reports a backup drive's health from its SMART data (drive
// step of the data path): ATA attributes through SAT pass-through, or the
// NVMe health log, as a verdict with reasons in plain words.
package smart

import (
	"time"
)

// Verdict is a drive's health in one word.
type Verdict string

// The verdicts.
const (
	OK      Verdict = "ok"
	Warning Verdict = "warning" // wearing: plan to replace it
	Failing Verdict = "failing" // replace it now; never write to it again
	Unknown Verdict = "unknown" // the drive cannot be asked
)

// Attribute is one ATA SMART attribute.
type Attribute struct {
	ID        uint8  `json:"id"`
	Name      string `json:"name"`
	Value     uint8  `json:"value"`
	Worst     uint8  `json:"worst"`
	Threshold uint8  `json:"threshold"`
	Raw       uint64 `json:"raw"` // masked as smartctl shows it
	PreFail   bool   `json:"prefail"`
}

// Report is one health check.
type Report struct {
	Device   string `json:"device"`
	Protocol string `json:"protocol"` // "ata", "nvme" or ""
	// Model and Serial are the drive's own (ATA IDENTIFY DEVICE, NVMe
	// Identify Controller); empty when it could not say.
	Model        string      `json:"model,omitempty"`
	Serial       string      `json:"serial,omitempty"`
	Verdict      Verdict     `json:"verdict"`
	Reasons      []string    `json:"reasons,omitempty"`
	Temperature  int         `json:"temperature,omitempty"` // °C; 0 unknown
	PowerOnHours int         `json:"power_on_hours,omitempty"`
	Attributes   []Attribute `json:"attributes,omitempty"`
	// NVMe health log fields.
	CriticalWarning uint8     `json:"critical_warning,omitempty"`
	PercentUsed     uint8     `json:"percent_used,omitempty"`
	MediaErrors     uint64    `json:"media_errors,omitempty"`
	Checked         time.Time `json:"checked"`
}

func (r *Report) worse(v Verdict, reason string) {
	rank := map[Verdict]int{OK: 0, Unknown: 0, Warning: 1, Failing: 2}
	if rank[v] > rank[r.Verdict] || r.Verdict == "" {
		r.Verdict = v
	}
	r.Reasons = append(r.Reasons, reason)
}

// HotCelsius is the temperature above which a drive is reported hot.
const HotCelsius = 55
