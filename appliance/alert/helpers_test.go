package alert

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// base is a Monday morning.
var base = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// recorder is a target that keeps what it is sent, failing the first
// failures attempts.
type recorder struct {
	mu       sync.Mutex
	failures int
	attempts int
	got      []Message
	block    chan struct{} // when set, send waits for it
}

func (r *recorder) name() string       { return "recorder" }
func (r *recorder) wants(Message) bool { return true }
func (r *recorder) send(ctx context.Context, m Message) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.attempts <= r.failures {
		return errors.New("recorder: the line is down")
	}
	r.got = append(r.got, m)
	return nil
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.got...)
}

// newTest returns a notifier with cfg (StateDir filled in when empty)
// delivering to a recorder.
func newTest(t *testing.T, cfg Config) (*Notifier, *recorder) {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "clinicbox-smith"
	}
	n, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	n.targets = append(n.targets, r)
	return n, r
}

// queued returns the messages waiting in the outbox and empties it, as
// "kind:condition" for firing, reminder and cleared messages.
func queued(n *Notifier) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, d := range n.st.Outbox {
		out = append(out, d.Msg.Kind+":"+key(d.Msg.Condition, d.Msg.Drive))
	}
	n.st.Outbox = nil
	return out
}

func cond(name string, sev status.Severity, since time.Time) status.Condition {
	return status.Condition{Name: name, Severity: sev, Since: since, Message: fmt.Sprintf("%s: do the thing", name)}
}

func stat(at time.Time, conds ...status.Condition) status.Status {
	return status.Status{Time: at, Conditions: conds, Severity: status.Worst(conds), Headline: "see below"}
}
