package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// copyLoop writes arriving WAL into the sink, flushes it at most every
// FlushInterval (at once when the stream goes idle) and reports progress.
func (s *streamer) copyLoop(ctx context.Context, tli uint32) (uint32, LSN, error) {
	readCtx, stopReader := context.WithCancel(ctx)
	msgs := make(chan walMsg, 16)
	go s.readMessages(readCtx, msgs)
	// halt stops the reader and waits for it to let go of the connection.
	halt := func() {
		stopReader()
		for range msgs {
		}
	}
	defer halt()
	flushTimer := time.NewTimer(time.Hour)
	flushTimer.Stop()
	status := time.NewTicker(s.opt.StatusInterval)
	defer status.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return 0, 0, s.stop(context.WithoutCancel(ctx))
			}
			if m.err != nil {
				s.flush(tli) // keep what arrived
				return 0, 0, m.err
			}
			if m.copyEnd {
				if err := s.flush(tli); err != nil {
					return 0, 0, err
				}
				return s.endOfTimeline(ctx)
			}
			err := s.handle(tli, m)
			if m.buf != nil {
				msgBufs.Put(m.buf)
			}
			if err != nil {
				return 0, 0, err
			}
			if s.received > s.flushed {
				if wait := s.opt.FlushInterval - time.Since(s.lastFlush); len(msgs) == 0 && wait <= 0 {
					if err := s.flushAndReport(tli); err != nil {
						return 0, 0, err
					}
				} else {
					flushTimer.Reset(max(wait, time.Millisecond))
				}
			}
		case <-flushTimer.C:
			if err := s.flushAndReport(tli); err != nil {
				return 0, 0, err
			}
		case <-status.C:
			if time.Since(s.lastStatus) >= s.opt.StatusInterval {
				if err := s.sendStatus(false); err != nil {
					return 0, 0, err
				}
			}
		case <-ctx.Done():
			halt()
			return 0, 0, s.stop(context.WithoutCancel(ctx))
		}
		if s.opt.StopAt > 0 && s.flushed >= s.opt.StopAt {
			halt()
			return 0, 0, s.stop(context.WithoutCancel(ctx))
		}
	}
}

func (s *streamer) handle(tli uint32, m walMsg) error {
	if m.data != nil {
		if m.lsn != s.received {
			return fmt.Errorf("postgres: WAL stream jumped from %s to %s", s.received, m.lsn)
		}
		if err := s.sink.Write(m.lsn, m.data); err != nil {
			return err
		}
		s.received = m.lsn + LSN(len(m.data))
	}
	if m.reply {
		return s.sendStatus(false)
	}
	return nil
}

func (s *streamer) flush(tli uint32) error {
	if s.received == s.flushed {
		return nil
	}
	f, err := s.sink.Flush()
	if err != nil {
		return err
	}
	s.flushed = f
	s.lastFlush = time.Now()
	if s.opt.OnFlush != nil {
		s.opt.OnFlush(tli, f)
	}
	return nil
}

func (s *streamer) flushAndReport(tli uint32) error {
	if err := s.flush(tli); err != nil {
		return err
	}
	if time.Since(s.lastStatus) >= s.opt.StatusInterval {
		return s.sendStatus(false)
	}
	return nil
}

// sendStatus reports what was received and what is durable. The flush
// position is never zero (which the server would read as "same as write").
func (s *streamer) sendStatus(reply bool) error {
	s.lastStatus = time.Now()
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.c.pg, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: s.received, WALFlushPosition: max(s.flushed, 1), WALApplyPosition: max(s.flushed, 1),
		ReplyRequested: reply,
	})
	if err != nil {
		return fmt.Errorf("postgres: standby status: %w", err)
	}
	return nil
}

// stop flushes, reports the final position and closes the connection: the
// stream cannot be ended mid-COPY and reused more cheaply than reconnecting.
func (s *streamer) stop(ctx context.Context) error {
	err := s.flush(0)
	if serr := s.sendStatus(false); err == nil {
		err = serr
	}
	s.c.pg.Close(ctx)
	return err
}

// endOfTimeline answers the server's CopyDone and reads the next timeline
// and where it starts.
func (s *streamer) endOfTimeline(ctx context.Context) (uint32, LSN, error) {
	if err := s.sendStatus(false); err != nil {
		return 0, 0, err
	}
	s.c.pg.Frontend().Send(&pgproto3.CopyDone{})
	if err := s.c.pg.Frontend().Flush(); err != nil {
		return 0, 0, err
	}
	var next uint32
	var start LSN
	for {
		msg, err := s.c.pg.ReceiveMessage(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("postgres: end of timeline: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			if len(m.Values) == 2 {
				n, _ := strconv.ParseUint(string(m.Values[0]), 10, 32)
				next = uint32(n)
				start, err = pglogrepl.ParseLSN(string(m.Values[1]))
				if err != nil {
					return 0, 0, err
				}
			}
		case *pgproto3.ErrorResponse:
			return 0, 0, explainQuery(s.c.user, "end of timeline", pgErr(m))
		case *pgproto3.ReadyForQuery:
			if next == 0 {
				return 0, 0, fmt.Errorf("postgres: the server ended the stream without a next timeline")
			}
			return next, start, nil
		}
	}
}

// followSwitch stores the new timeline's history and ends the old one.
func (s *streamer) followSwitch(ctx context.Context, next uint32, start LSN) error {
	_, content, err := s.c.TimelineHistory(ctx, next)
	if err != nil {
		return err
	}
	if err := s.sink.History(next, content); err != nil {
		return err
	}
	return s.sink.SwitchTimeline(next, start)
}

func pgErr(m *pgproto3.ErrorResponse) error { return pgconn.ErrorResponseToPgError(m) }
