package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// stateFile is the notifier's state in Config.StateDir.
const stateFile = "alerts.json"

// state is what the notifier remembers across restarts: the conditions it
// tracks, the days once-a-day alerts went out, the last summary, and the
// messages not yet delivered.
type state struct {
	Conditions map[string]*tracked `json:"conditions"`
	// Daily maps a once-a-day condition name to the local date
	// ("2006-01-02") it was last alerted.
	Daily map[string]string `json:"daily,omitempty"`
	// LastSummary is the local date of the last daily summary.
	LastSummary string      `json:"last_summary,omitempty"`
	Outbox      []*delivery `json:"outbox,omitempty"`
	Dropped     int         `json:"dropped,omitempty"`
}

// tracked is one condition (a name, and a drive when it is about one).
type tracked struct {
	Name     string          `json:"name"`
	Drive    string          `json:"drive,omitempty"`
	Severity status.Severity `json:"severity"`
	// Message is the condition's latest text; not kept, so that a message
	// that changes every minute does not rewrite the file every minute.
	Message string `json:"-"`
	Ack     bool   `json:"ack,omitempty"`
	// Since is when this occurrence began.
	Since time.Time `json:"since"`
	// GoneSince is when it was last seen absent; zero while present.
	GoneSince time.Time `json:"gone_since,omitzero"`
	// Alerted is set from the alert until the "resolved" message.
	Alerted bool `json:"alerted,omitempty"`
	// AlertedSeverity is the severity last alerted, for escalations.
	AlertedSeverity status.Severity `json:"alerted_severity,omitempty"`
	// LastSent is when the last alert or reminder went out; kept after
	// the condition clears, so it is not alerted again within its
	// reminder period.
	LastSent time.Time `json:"last_sent,omitzero"`
}

// delivery is a message and the targets that have yet to take it.
type delivery struct {
	Msg      Message   `json:"msg"`
	Pending  []string  `json:"pending"`
	Attempts int       `json:"attempts,omitempty"`
	FirstTry time.Time `json:"first_try,omitzero"`
	NextTry  time.Time `json:"next_try,omitzero"`
}

func loadState(dir string) (*state, error) {
	s := &state{}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("alert: read state: %w", err)
	default:
		if err := json.Unmarshal(b, s); err != nil {
			// A damaged state file must not stop alerts: start afresh.
			s = &state{}
		}
	}
	if s.Conditions == nil {
		s.Conditions = map[string]*tracked{}
	}
	if s.Daily == nil {
		s.Daily = map[string]string{}
	}
	return s, nil
}
