package appliance

import (
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// A condition that clears and comes back is new: it is not covered by the
// acknowledgement of the one before, whatever Since its source gives.
func TestOnsets(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	failed := status.Condition{Name: condBackupFailed, Drive: "d1"}
	type step struct {
		show     []status.Condition // conditions the sources report
		ack      bool               // acknowledge the first one shown, after stamping
		renew    bool               // the source says its condition happened again
		wantAck  bool               // whether the first one is acknowledged
		wantFrom int                // its onset, in minutes from t0
	}
	withSince := func(c status.Condition, m int) status.Condition { c.Since = at(m); return c }
	tests := []struct {
		name  string
		steps []step
	}{
		{"acknowledged stays acknowledged", []step{
			{show: []status.Condition{failed}, ack: true, wantAck: true},
			{show: []status.Condition{failed}, wantAck: true},
		}},
		{"cleared and back is new", []step{
			{show: []status.Condition{failed}, ack: true, wantAck: true},
			{},
			{show: []status.Condition{failed}, wantFrom: 2},
		}},
		{"failed again without clearing is new", []step{
			{show: []status.Condition{failed}, ack: true, wantAck: true},
			{show: []status.Condition{failed}, renew: true, wantFrom: 1},
		}},
		{"a later Since from the source is new", []step{
			{show: []status.Condition{withSince(failed, 0)}, ack: true, wantAck: true},
			{show: []status.Condition{withSince(failed, 1)}, wantFrom: 1},
		}},
		{"an unchanged Since keeps the acknowledgement", []step{
			{show: []status.Condition{withSince(failed, 0)}, ack: true, wantAck: true},
			{show: []status.Condition{withSince(failed, 0)}, wantAck: true},
		}},
		{"another drive's condition is its own", []step{
			{show: []status.Condition{failed}, ack: true, wantAck: true},
			{show: []status.Condition{{Name: condBackupFailed, Drive: "d2"}, failed}, wantFrom: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOnsets()
			for i, s := range tt.steps {
				if s.renew {
					o.renew(failed.Name, failed.Drive)
				}
				conds := append([]status.Condition(nil), s.show...)
				o.stamp(conds, at(i))
				if len(conds) == 0 {
					continue
				}
				if s.ack {
					o.ack(conds[0])
					o.stamp(conds, at(i))
				}
				if got := conds[0]; got.Acknowledged != s.wantAck || !got.Since.Equal(at(s.wantFrom)) {
					t.Fatalf("step %d: got acknowledged %v since %v; want %v since %v", i, got.Acknowledged, got.Since, s.wantAck, at(s.wantFrom))
				}
			}
		})
	}
}
