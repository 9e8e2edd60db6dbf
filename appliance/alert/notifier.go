package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/durable"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

// target is somewhere messages go: e-mail or a webhook.
type target interface {
	name() string
	// wants reports whether the target takes this kind of message.
	wants(m Message) bool
	// send delivers m; an error wrapping errPermanent is not retried.
	send(ctx context.Context, m Message) error
}

// errPermanent marks a refusal that sending again will not change.
var errPermanent = errors.New("refused")

// Limits of the outbox.
const (
	maxOutbox   = 100            // older undelivered messages are dropped first
	giveUpAfter = 24 * time.Hour // a message older than this is dropped
	maxBackoff  = 30 * time.Minute
)

// Notifier decides which alerts to send and sends them. Update is cheap and
// never waits for the network; Run delivers.
type Notifier struct {
	cfg        Config
	log        *slog.Logger
	loc        *time.Location
	host       string
	daily      []string
	clearAfter time.Duration
	targets    []target
	kick       chan struct{}

	mu     sync.Mutex
	st     *state
	saved  []byte
	health map[string]targetHealth
	stats  Stats
}

type targetHealth struct {
	ok   time.Time
	fail time.Time
	err  error
}

// Stats count deliveries since the notifier started.
type Stats struct {
	Sent      int       // deliveries to a target that succeeded
	Failed    int       // delivery attempts that failed
	Pending   int       // messages waiting for at least one target
	Dropped   int       // messages given up on (too old, outbox full, refused)
	LastSent  time.Time // zero when nothing was sent
	LastError string    // the last failure, "" when none
}

// New returns a notifier for cfg, with its state read from cfg.StateDir.
func New(cfg Config, log *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{cfg: cfg, log: log, loc: cfg.Location, host: cfg.Hostname, daily: cfg.Daily,
		clearAfter: time.Duration(cfg.ClearAfter), kick: make(chan struct{}, 1), health: map[string]targetHealth{}}
	if n.loc == nil {
		n.loc = time.UTC
	}
	if n.host == "" {
		n.host, _ = os.Hostname()
	}
	if n.daily == nil {
		n.daily = []string{string(rotation.SwapDue)}
	}
	if n.clearAfter == 0 {
		n.clearAfter = DefaultClearAfter
	}
	if cfg.SMTP != nil {
		e, err := newEmail(*cfg.SMTP, n.host, n.loc)
		if err != nil {
			return nil, err
		}
		n.targets = append(n.targets, e)
	}
	if cfg.Webhook != nil {
		n.targets = append(n.targets, newWebhook(*cfg.Webhook, n.host))
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("alert: state dir: %w", err)
	}
	st, err := loadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	n.st = st
	return n, nil
}

// trustedSince is the earliest plausible time: before it the box's clock
// has not been set (a Pi starts at 1970) and no date-based decision is made.
var trustedSince = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Update looks at the status document as of now and queues the messages
// that are due. Call it whenever the status changes and at least once a
// minute. It never waits for the network.
func (n *Notifier) Update(now time.Time, st status.Status) {
	if now.Before(trustedSince) {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	msgs := n.decide(now, st)
	if m, ok := n.summaryDue(now, st); ok {
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		n.enqueue(m)
		n.log.Info("alert queued", "op", "alert", "kind", m.Kind, "condition", m.Condition, "drive", m.Drive)
	}
	n.save()
	if len(msgs) > 0 {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// enqueue adds m for every target that takes it. The caller holds n.mu.
func (n *Notifier) enqueue(m Message) {
	d := &delivery{Msg: m}
	for _, t := range n.targets {
		if t.wants(m) {
			d.Pending = append(d.Pending, t.name())
		}
	}
	if len(d.Pending) == 0 {
		return
	}
	n.st.Outbox = append(n.st.Outbox, d)
	if over := len(n.st.Outbox) - maxOutbox; over > 0 {
		n.st.Outbox = slices.Delete(n.st.Outbox, 0, over)
		n.st.Dropped += over
	}
}

// save writes the state when it changed. The caller holds n.mu.
func (n *Notifier) save() {
	b, err := json.MarshalIndent(n.st, "", "\t")
	if err != nil || bytes.Equal(b, n.saved) {
		return
	}
	if err := durable.WriteFile(filepath.Join(n.cfg.StateDir, stateFile), b, 0o600); err != nil {
		n.log.Error("alert: cannot save state", "op", "alert", "err", err)
		return
	}
	n.saved = b
}

// Health returns an error, in plain words, while alerts are not getting
// through: the last attempt on a target failed, or messages were given up.
func (n *Notifier) Health() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var problems []string
	for _, t := range n.targets {
		h := n.health[t.name()]
		if h.err != nil && h.fail.After(h.ok) {
			problems = append(problems, h.err.Error())
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("alert: alerts are not getting through: %s", strings.Join(problems, "; "))
}

// Stats returns the delivery counts.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.Pending = len(n.st.Outbox)
	s.Dropped = n.st.Dropped
	return s
}
