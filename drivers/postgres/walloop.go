package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// copyLoop writes arriving WAL into the sink and reports progress. It runs
// on one goroutine: every FlushInterval a tick flushes what arrived and
// sends a standby status when one is due; timers are read deadlines on the
// connection, and cancelling ctx sets one in the past. A caught-up stream
// receives a small message for nearly every commit on the server, and
// waking up for each costs a Go program far more than the bytes do, so the
// socket wakes the loop only once rcvLowat bytes are waiting; the tick
// picks up anything less (walsocket.go).
func (s *streamer) copyLoop(ctx context.Context, tli uint32) (uint32, LSN, error) {
	nc := s.c.pg.Conn()
	unwatch := context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Unix(1, 0)) })
	sock := newWALSocket(nc)
	defer func() {
		unwatch()
		nc.SetReadDeadline(time.Time{})
		sock.reset()
	}()
	timedOut := false
	for {
		if done, err := s.beforeReceive(ctx, tli, sock, timedOut); done {
			return 0, 0, err
		}
		nc.SetReadDeadline(s.nextTick())
		if ctx.Err() != nil {
			return 0, 0, s.stop(context.WithoutCancel(ctx))
		}
		msg, err := s.c.pg.ReceiveMessage(context.Background())
		timedOut = err != nil && ctx.Err() == nil && pgconn.Timeout(err)
		switch {
		case timedOut:
			continue
		case err != nil:
			return 0, 0, s.receiveFailed(ctx, tli, err)
		}
		if _, ok := msg.(*pgproto3.CopyDone); ok {
			if err := s.flush(tli); err != nil {
				return 0, 0, err
			}
			unwatch()
			nc.SetReadDeadline(time.Time{})
			sock.reset() // the replies that follow are small
			return s.endOfTimeline(ctx)
		}
		if err := s.handleMessage(tli, msg); err != nil {
			return 0, 0, err
		}
	}
}

// beforeReceive runs before each wait for a message: it ends the stream
// (done) once WAL up to StopAt has arrived, and ticks when a tick is due
// and the connection has nothing waiting or the last wait timed out.
func (s *streamer) beforeReceive(ctx context.Context, tli uint32, sock *walSocket, timedOut bool) (done bool, err error) {
	// Once WAL up to StopAt has arrived it is flushed at once, not at the
	// next tick: waiting would add up to a FlushInterval to every drain
	// that ends at a given position.
	if s.opt.StopAt > 0 && s.received >= s.opt.StopAt {
		if err := s.flush(tli); err != nil {
			return true, err
		}
		return true, s.stop(context.WithoutCancel(ctx))
	}
	if now := time.Now(); now.After(s.nextTick()) && (timedOut || (!s.buffered() && sock.idle())) {
		if err := s.tick(tli, now); err != nil {
			return true, err
		}
	}
	if s.opt.StopAt > 0 {
		sock.expect(int(s.opt.StopAt) - int(s.received))
	}
	return false, nil
}

// receiveFailed ends the stream after a failed receive: cleanly when ctx
// ended, else keeping what arrived and saying what went wrong.
func (s *streamer) receiveFailed(ctx context.Context, tli uint32, err error) error {
	if ctx.Err() != nil {
		return s.stop(context.WithoutCancel(ctx))
	}
	s.flush(tli) // keep what arrived
	return s.c.explainReceive("WAL stream", err)
}

// handleMessage takes one message of the COPY stream other than its end.
func (s *streamer) handleMessage(tli uint32, msg pgproto3.BackendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		if err := s.handle(m.Data); err != nil {
			s.flush(tli)
			return err
		}
	case *pgproto3.ErrorResponse:
		s.flush(tli)
		s.failed = true
		return explainQuery(s.c.user, "WAL stream", pgErr(m))
	}
	return nil
}

// buffered reports whether received bytes wait in the connection's buffers.
func (s *streamer) buffered() bool {
	return s.c.pg.Frontend().ReadBufferLen() > 0 || (s.c.rbuf != nil && s.c.rbuf.Buffered() > 0)
}

// nextTick is when the next flush or standby status is due.
func (s *streamer) nextTick() time.Time {
	t := s.lastTick.Add(s.opt.FlushInterval)
	if st := s.lastStatus.Add(s.opt.StatusInterval); st.Before(t) {
		t = st
	}
	return t
}

// tick flushes what arrived and sends a standby status when one is due.
// A stream well behind the server (catching up on a backlog) flushes only
// every backlogFlushes ticks: the slot keeps that WAL on the server until it
// is reported flushed, so flushing less often while catching up loses
// nothing and keeps the receiver going. A stream following a busy server
// always has bytes waiting, so that is not taken as being behind: the server
// says where its WAL ends in every message.
func (s *streamer) tick(tli uint32, now time.Time) error {
	s.lastTick = now
	if s.received > s.flushed && (!s.isBehind() || now.Sub(s.lastFlush) >= backlogFlushes*s.opt.FlushInterval) {
		if err := s.flush(tli); err != nil {
			return err
		}
	}
	if now.Sub(s.lastStatus) >= s.opt.StatusInterval {
		return s.sendStatus(false)
	}
	return nil
}

// isBehind reports whether the stream is catching up on a backlog.
func (s *streamer) isBehind() bool { return s.serverEnd > s.received+backlogBytes }

// noteBacklog tells a sink that wants to know when the stream starts or
// stops catching up.
func (s *streamer) noteBacklog() {
	if b := s.isBehind(); b != s.behind {
		s.behind = b
		if bs, ok := s.sink.(backlogSink); ok {
			bs.SetBehind(b)
		}
	}
}

// backlogFlushes is how many ticks a stream catching up lets pass between
// flushes.
const backlogFlushes = 5

// backlogBytes is how far behind the server's WAL end a stream counts as
// catching up: more than a busy clinic writes in a second, far less than a
// night's backlog.
const backlogBytes = 4 << 20

// handle stores the WAL of one CopyData message straight from the
// protocol reader's buffer and answers keepalives that ask for it.
func (s *streamer) handle(d []byte) error {
	if len(d) == 0 {
		return errors.New("postgres: WAL stream: empty message")
	}
	switch d[0] {
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(d[1:])
		if err != nil {
			return fmt.Errorf("postgres: WAL stream: %w", err)
		}
		if x.WALStart != s.received {
			return fmt.Errorf("postgres: WAL stream jumped from %s to %s", s.received, x.WALStart)
		}
		if err := s.sink.Write(x.WALStart, x.WALData); err != nil {
			return err
		}
		s.received = x.WALStart + LSN(len(x.WALData))
		s.serverEnd = max(s.serverEnd, x.ServerWALEnd)
		s.noteBacklog()
		return nil
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(d[1:])
		if err != nil {
			return fmt.Errorf("postgres: WAL stream: %w", err)
		}
		s.serverEnd = max(s.serverEnd, k.ServerWALEnd)
		s.noteBacklog()
		if k.ReplyRequested {
			return s.sendStatus(false)
		}
		return nil
	}
	return fmt.Errorf("postgres: WAL stream: unknown message type %q", d[0])
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
	if s.opt.Progress != nil {
		s.opt.Progress(f, max(s.serverEnd, f))
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
			return 0, 0, s.c.explainReceive("end of timeline", err)
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
			s.failed = true
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
