package appliance

import (
	"context"
	"errors"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/status"
)

// logVault is a fakeVault that also takes the logs, refusing the audit
// log, and tells each round it was asked.
type logVault struct {
	fakeVault
	rounds chan []string // the custody log's files as read, one per round
}

func (v *logVault) ShipLogs(ctx context.Context, logs []*offsite.FileLog) error {
	var files []string
	for _, l := range logs {
		if l.Name == "custody" {
			files = l.Files()
		}
	}
	select {
	case v.rounds <- files:
	default:
	}
	return errors.Join(&offsite.LogRefused{Log: "audit", Reason: "the head sent is older than the vault's"})
}

// The logs go to the vault at start and after an eject, and a vault that
// refuses one is reported once, however often it is asked.
func TestLogsShippedAfterEject(t *testing.T) {
	v := &logVault{fakeVault: fakeVault{since: time.Now()}, rounds: make(chan []string, 16)}
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), func(c *Config) { c.Offsite = v })
	round := func(what string) []string {
		t.Helper()
		select {
		case files := <-v.rounds:
			return files
		case <-time.After(testenv.Patience(t)):
			t.Fatalf("no round of log shipping %s", what)
			return nil
		}
	}
	round("at start")
	r.enroll("blue")
	for len(v.rounds) > 0 {
		<-v.rounds
	}
	if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	files := round("after the eject")
	if len(files) != 1 {
		t.Fatalf("custody files: got %v; want custody.jsonl", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Size() == 0 {
		t.Errorf("custody log: got %v, %v; want the enrolment's entries", fi, err)
	}
	st := r.wait("refusal reported", func(st status.Status) bool { return refusalsShown(st) > 0 })
	if n := refusalsShown(st); n != 1 {
		t.Errorf("refusal events: got %d; want 1", n)
	}
}

func refusalsShown(st status.Status) int {
	n := 0
	for _, e := range st.Events {
		if e.Kind == "offsite" && strings.Contains(e.Message, "refuses the box's audit log") {
			n++
		}
	}
	return n
}
