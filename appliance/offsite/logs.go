package offsite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// The box's custody and audit logs go to the vault, which keeps every
// entry and the latest signed head of each: a log later cut or rewritten
// on the box shows against the vault's heads. ShipLogs sends what the
// vault lacks, in batches paced by the backup bandwidth cap, so WAL,
// which is never capped, comes first.

// logBatchBytes bounds the entries of one batch, well inside the vault's
// wire.MaxLogBatch with the head and the JSON around them.
const logBatchBytes = wire.MaxLogBatch / 4

// LogRefused is a log the vault will not take from the box: its head is
// older than, or differs from, the vault's, or the vault found it does not
// verify. It is not sent again until the box restarts: someone must look.
type LogRefused struct {
	Log    string
	Reason string
}

func (e *LogRefused) Error() string {
	return fmt.Sprintf("offsite: the vault refuses the %s log: %s", e.Log, e.Reason)
}

// ShipLogs sends each log's entries above the vault's head, starting from
// the heads the vault holds (asked once after a restart). A log the vault
// refused earlier is skipped; its *LogRefused is returned again.
func (s *Shipper) ShipLogs(ctx context.Context, logs []*FileLog) error {
	s.mu.Lock()
	known := s.logHeads != nil
	s.mu.Unlock()
	if !known {
		var hs chain.Heads
		if err := s.call(ctx, "GET", "/v1/logs/heads", nil, nil, &hs); err != nil {
			return err
		}
		s.setLogHeads(hs.Heads...)
	}
	var errs []error
	for _, l := range logs {
		if err := s.shipLog(ctx, l); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shipLog sends one log's batches until the vault holds all of it.
func (s *Shipper) shipLog(ctx context.Context, l *FileLog) error {
	gapsSeen := 0
	for ctx.Err() == nil {
		lines, err := s.nextBatch(l)
		if err != nil || len(lines) == 0 {
			return err
		}
		if err := s.answered(l, s.sendBatch(ctx, l, lines), &gapsSeen); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// nextBatch returns the entries of l the vault does not hold yet, as last
// heard (none when it holds them all); a log that ends before what the
// vault holds is refused.
func (s *Shipper) nextBatch(l *FileLog) ([]logLine, error) {
	s.mu.Lock()
	at, refused := s.logHeads[l.Name], s.logsRefused[l.Name]
	s.mu.Unlock()
	if refused != nil {
		return nil, refused
	}
	last, err := l.last()
	switch {
	case err != nil:
		return nil, fmt.Errorf("offsite: read the %s log: %w", l.Name, err)
	case last.Seq < at.Seq || (last.Seq == at.Seq && last.Hash != at.Hash):
		return nil, s.refuseLog(l.Name, fmt.Sprintf("the box's log ends at entry %d, the vault holds up to entry %d: the log on the box was cut or rewritten, or an old copy of it restored", last.Seq, at.Seq))
	case last.Seq == at.Seq:
		return nil, nil
	}
	return l.since(at.Seq, logBatchBytes)
}

// answered handles the vault's answer to a batch: nil to go on (sent, or a
// first gap, after which the vault's own head is used), or why the log
// stops.
func (s *Shipper) answered(l *FileLog, err error, gapsSeen *int) error {
	c, p := code(err)
	switch {
	case err == nil:
		return nil
	case c == "gap" && p.Head != nil && *gapsSeen == 0:
		*gapsSeen++
		s.setLogHeads(*p.Head) // the vault holds less, or more, than thought
		return nil
	case c == "gap":
		// Again, with the vault's own head: the box no longer has the
		// entries the vault lacks (its oldest files were removed).
		return s.refuseLog(l.Name, "the box no longer holds the entries the vault lacks (its oldest log files were removed before they reached the vault): "+p.Error)
	case c == "stale" || c == "mismatch" || c == "malformed" || c == "too_large":
		return s.refuseLog(l.Name, p.Error)
	}
	return err
}

// sendBatch sends lines with the head signed at the last of them.
func (s *Shipper) sendBatch(ctx context.Context, l *FileLog, lines []logLine) error {
	b := wire.LogBatch{Head: l.head(lines[len(lines)-1])}
	for _, line := range lines {
		b.Entries = append(b.Entries, json.RawMessage(line.raw))
	}
	body := mustJSON(b)
	for n := len(body); n > 0; {
		k := min(n, s.throttle.chunk())
		if err := s.throttle.wait(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	var hs chain.Heads
	if err := s.call(ctx, "POST", "/v1/logs/"+l.Name, nil, body, &hs); err != nil {
		return err
	}
	s.setLogHeads(hs.Heads...)
	return nil
}

func (s *Shipper) setLogHeads(hs ...chain.Head) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logHeads == nil {
		s.logHeads = map[string]chain.Head{}
	}
	for _, h := range hs {
		s.logHeads[h.Log] = h
	}
}

// refuseLog stops sending a log and reports why.
func (s *Shipper) refuseLog(name, why string) error {
	err := &LogRefused{Log: name, Reason: why}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logsRefused == nil {
		s.logsRefused = map[string]*LogRefused{}
	}
	s.logsRefused[name] = err
	s.st.LogsRefused = err.Error()
	s.log.Error("the vault refuses a log", "op", "offsite", "log", name, "why", why)
	return err
}

// LogHead returns the head of a log the vault holds, as last heard.
func (s *Shipper) LogHead(name string) (chain.Head, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.logHeads[name]
	return h, ok
}
