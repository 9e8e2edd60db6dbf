package hardware

import (
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/panel"
)

// StatusPanel shows the status document's conditions on the front panel,
// which speaks its own words so that the driver needs nothing from the
// appliance.
type StatusPanel struct{ P *panel.Panel }

// Set shows conds.
func (s StatusPanel) Set(conds []status.Condition) {
	pc := make([]panel.Condition, len(conds))
	for i, c := range conds {
		pc[i] = panel.Condition{Name: c.Name, Drive: c.Drive, Since: c.Since, Severity: panelSeverity(c.Severity), Acknowledged: c.Acknowledged}
	}
	s.P.Set(pc)
}

// State says what the panel shows.
func (s StatusPanel) State() status.Panel {
	st := s.P.State()
	return status.Panel{Green: st.Green, Amber: st.Amber, Red: st.Red, Buzzer: st.Buzzer, Condition: st.Condition}
}

// panelSeverity maps a status severity onto the panel's; an unknown one
// shows as a failure rather than as nothing.
func panelSeverity(s status.Severity) panel.Severity {
	switch s {
	case status.Good:
		return panel.Good
	case status.Busy:
		return panel.Busy
	case status.Attention:
		return panel.Attention
	}
	return panel.Failure
}
