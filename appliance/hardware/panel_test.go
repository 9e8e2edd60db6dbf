package hardware

import (
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/panel"
)

// TestStatusPanelSeverities checks that each severity of the status
// document lights what the README says it does, through the adapter.
func TestStatusPanelSeverities(t *testing.T) {
	since := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		sev                       status.Severity
		green, amber, red, buzzer string
	}{
		{status.Good, "steady", "off", "off", "silent"},
		{status.Busy, "slow", "off", "off", "silent"},
		{status.Attention, "off", "steady", "off", "one short beep"},
		{status.Failure, "off", "off", "fast", "three beeps every minute"},
	} {
		sp := StatusPanel{panel.New(panel.Config{})}
		sp.Set([]status.Condition{{Name: "x", Severity: tc.sev, Since: since}})
		got := sp.State()
		want := status.Panel{Green: tc.green, Amber: tc.amber, Red: tc.red, Buzzer: tc.buzzer, Condition: "x"}
		if tc.sev == status.Good {
			want.Condition = ""
		}
		if got != want {
			t.Errorf("%v: got %+v; want %+v", tc.sev, got, want)
		}
	}
}
