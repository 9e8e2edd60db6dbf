package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// WALSink stores streamed WAL. Write receives WAL in order without gaps;
// Flush makes everything written durable and returns the position up to
// which it is; only that position is ever reported to the server as flushed.
type WALSink interface {
	// Resume tells where stored WAL ends: the timeline and segment-aligned
	// position to stream from next. ok is false when nothing is stored.
	Resume() (tli uint32, lsn LSN, ok bool, err error)
	// Begin starts a session at a segment boundary.
	Begin(tli uint32, lsn LSN) error
	Write(lsn LSN, data []byte) error
	Flush() (LSN, error)
	// History stores a timeline history file.
	History(tli uint32, content []byte) error
	// SwitchTimeline ends the current timeline at end; its last segment
	// stays partial.
	SwitchTimeline(next uint32, end LSN) error
}

// backlogSink is a WALSink that wants to know when the stream starts and
// stops catching up on a backlog (the archive compresses faster then).
type backlogSink interface{ SetBehind(behind bool) }

// StreamOptions control StreamWAL.
type StreamOptions struct {
	// Slot names a permanent physical slot, created if missing. Empty means a
	// temporary slot for this connection only (created by the caller or here).
	Slot string
	// TempSlot, with an empty Slot, is the name of a temporary slot already
	// created on this connection (CreateSlot(..., true)).
	TempSlot string
	// StartTLI/StartLSN override the start position (used by a backup that
	// streams its own WAL from its start). Zero means resume.
	StartTLI uint32
	StartLSN LSN
	// StopAt > 0 ends streaming once WAL up to StopAt is flushed.
	StopAt LSN
	// FlushInterval bounds how often partial data is made durable while WAL
	// keeps arriving; when the stream goes idle it is flushed at once.
	// Zero means 200 ms.
	FlushInterval time.Duration
	// StatusInterval is the most often a standby status is sent unprompted.
	// Zero means one second.
	StatusInterval time.Duration
	// OnFlush, when set, is called after each flush with the durable position.
	OnFlush func(tli uint32, flushed LSN)
	// Progress, when set, is also called after each flush, with the
	// server's WAL end as its last message said: how far behind the
	// stream is.
	Progress func(flushed, serverEnd LSN)
	// OnGap, when set, is called when the stored WAL ends before the slot
	// and streaming starts afresh at the slot: WAL from stored to restart
	// is not in this repository, so point-in-time recovery across it needs
	// a base backup taken after it. recreated says the slot was missing
	// (dropped by someone) and was created again.
	OnGap func(stored, restart LSN, recreated bool)
	Log   *slog.Logger
}

// awaitReady reads what follows a command's error up to ReadyForQuery, so
// that the connection, and a temporary slot that lives as long as it,
// can serve another stream.
func (c *Conn) awaitReady(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for {
		msg, err := c.pg.ReceiveMessage(ctx)
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return
		}
	}
}

// StreamWAL streams WAL into sink until ctx is cancelled, StopAt is reached
// or an error occurs. A cancelled context is a clean stop: everything
// received is flushed and reported, and StreamWAL returns nil.
func (c *Conn) StreamWAL(ctx context.Context, sink WALSink, opt StreamOptions) error {
	s := &streamer{c: c, sink: sink, opt: opt, log: opt.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opt.FlushInterval <= 0 {
		s.opt.FlushInterval = 200 * time.Millisecond
	}
	if s.opt.StatusInterval <= 0 {
		s.opt.StatusInterval = time.Second
	}
	tli, lsn, err := s.startPosition(ctx)
	if err != nil {
		return err
	}
	for {
		next, nextStart, err := s.timeline(ctx, tli, lsn)
		if s.failed {
			c.awaitReady(ctx)
		}
		if err != nil || next == 0 {
			return err
		}
		s.log.Info("timeline switch", "op", "wal", "from", tli, "to", next, "lsn", nextStart)
		if err := s.followSwitch(ctx, next, nextStart); err != nil {
			return err
		}
		tli, lsn = next, c.System.SegmentStart(nextStart)
	}
}

type streamer struct {
	c    *Conn
	sink WALSink
	opt  StreamOptions
	log  *slog.Logger

	slot       string
	received   LSN
	flushed    LSN
	serverEnd  LSN  // the server's WAL end, as its last message said
	behind     bool // what the sink was last told (backlogSink)
	failed     bool // the server ended a command with an error; ReadyForQuery follows
	lastStatus time.Time
	lastFlush  time.Time
	lastTick   time.Time
}

// startPosition decides where to start as pg_receivewal does: the stored
// WAL wins; with nothing stored, the slot's restart position; else the
// server's current position; always rounded down to a segment boundary.
func (s *streamer) startPosition(ctx context.Context) (uint32, LSN, error) {
	s.slot = s.opt.TempSlot
	if s.opt.Slot != "" {
		s.slot = s.opt.Slot
		if tli, lsn, ok, err := s.slotPosition(ctx); err != nil || ok {
			return tli, lsn, err
		}
	}
	if s.opt.StartLSN != 0 {
		return s.opt.StartTLI, s.c.System.SegmentStart(s.opt.StartLSN), nil
	}
	if tli, lsn, ok, err := s.sink.Resume(); err != nil || ok {
		return tli, lsn, err
	}
	return s.c.System.Timeline, s.c.System.SegmentStart(s.c.System.XLogPos), nil
}

// slotPosition makes sure the named slot exists and, without a StartLSN,
// decides where to start by it: the stored WAL unless the slot has moved
// past it, else the slot's restart position. ok is false when neither
// says.
func (s *streamer) slotPosition(ctx context.Context) (tli uint32, lsn LSN, ok bool, err error) {
	si, recreated, err := s.ensureSlot(ctx)
	if err != nil || s.opt.StartLSN != 0 {
		return 0, 0, false, err
	}
	tli, lsn, ok, err = s.sink.Resume()
	if err != nil {
		return 0, 0, false, err
	}
	if ok && !s.slotPassed(si, lsn, recreated) {
		return tli, lsn, true, nil
	}
	if si.RestartLSN == 0 {
		return 0, 0, false, nil
	}
	tli = si.Timeline
	if tli == 0 {
		tli = s.c.System.Timeline
	}
	return tli, s.c.System.SegmentStart(si.RestartLSN), true, nil
}

// ensureSlot reads the named slot, creating it when it is missing;
// recreated says it had to be created.
func (s *streamer) ensureSlot(ctx context.Context) (si SlotInfo, recreated bool, err error) {
	si, err = s.c.ReadSlot(ctx, s.opt.Slot)
	if err != nil || si.Exists {
		return si, false, err
	}
	if err := s.c.CreateSlot(ctx, s.opt.Slot, false); err != nil {
		return si, false, err
	}
	s.log.Info("created replication slot", "op", "wal", "slot", s.opt.Slot)
	si, err = s.c.ReadSlot(ctx, s.opt.Slot)
	return si, true, err
}

// slotPassed reports whether the slot has moved more than a segment past
// the stored WAL, which ends at lsn, and says so. Drives take turns on one
// slot: while this repository was away, another one moved the slot on and
// the server may have recycled the WAL in between. That WAL is on the
// other drive; this one starts afresh where the slot is. A slot that had
// to be created again means the WAL in between is nowhere.
func (s *streamer) slotPassed(si SlotInfo, lsn LSN, recreated bool) bool {
	if si.RestartLSN == 0 || si.RestartLSN <= lsn+LSN(s.c.System.SegmentSize) {
		return false
	}
	if recreated {
		s.log.Warn("the replication slot was missing (dropped on the server?) and was created again; the WAL in between is lost, starting afresh at the slot: a new base backup is needed for point-in-time recovery past this point",
			"op", "wal", "slot", s.opt.Slot, "stored", lsn, "lsn", si.RestartLSN)
	} else {
		s.log.Info("stored WAL ends before the slot; starting afresh at the slot", "op", "wal", "slot", s.opt.Slot, "stored", lsn, "lsn", si.RestartLSN)
	}
	if s.opt.OnGap != nil {
		s.opt.OnGap(lsn, si.RestartLSN, recreated)
	}
	return true
}

// timeline streams one timeline. It returns the next timeline when the
// server ends this one, or 0 on a clean stop.
func (s *streamer) timeline(ctx context.Context, tli uint32, start LSN) (uint32, LSN, error) {
	if tli > 1 {
		if _, content, err := s.c.TimelineHistory(ctx, tli); err == nil {
			if err := s.sink.History(tli, content); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := s.sink.Begin(tli, start); err != nil {
		return 0, 0, err
	}
	s.received, s.flushed = start, start
	slot := ""
	if s.slot != "" {
		slot = "SLOT " + s.slot + " "
	}
	s.c.pg.Frontend().SendQuery(&pgproto3.Query{String: fmt.Sprintf("START_REPLICATION %sPHYSICAL %s TIMELINE %d", slot, start, tli)})
	if err := s.c.pg.Frontend().Flush(); err != nil {
		return 0, 0, fmt.Errorf("postgres: START_REPLICATION: %w", err)
	}
	if err := s.awaitCopyBoth(ctx); err != nil {
		return 0, 0, err
	}
	s.log.Info("streaming", "op", "wal", "slot", s.slot, "lsn", start, "tli", tli)
	return s.copyLoop(ctx, tli)
}

func (s *streamer) awaitCopyBoth(ctx context.Context) error {
	for {
		msg, err := s.c.pg.ReceiveMessage(ctx)
		if err != nil {
			return s.c.explainReceive("START_REPLICATION", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
			return nil
		case *pgproto3.ErrorResponse:
			s.failed = true
			return explainQuery(s.c.user, "START_REPLICATION", pgErr(m))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return fmt.Errorf("postgres: START_REPLICATION: unexpected %T", m)
		}
	}
}
