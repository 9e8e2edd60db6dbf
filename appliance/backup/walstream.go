package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// walStream streams a backup's own WAL through a temporary slot.
type walStream struct {
	conn *postgres.Conn
	slot string
	wal  *archive.WALWriter
	opt  Options
	ctx  context.Context

	cancel   context.CancelFunc
	started  bool
	finished chan struct{} // closed when StreamWAL returns
	err      error         // StreamWAL's result, set before finished closes
	flushes  *Flushes
	tli      uint32
}

// walConnect makes the connection of a backup's own WAL stream and its
// slot on a goroutine while the backup's connection is made: one after the
// other, the two cost a few round trips and a server backend's start each
// before the backup could begin.
type walConnect struct {
	done chan struct{} // closed once conn or err is set
	conn *postgres.Conn
	slot string
	err  error
}

func connectWALStream(ctx context.Context, opt Options) *walConnect {
	c := &walConnect{done: make(chan struct{}), slot: fmt.Sprintf("clinicbox_backup_%d", os.Getpid())}
	go func() {
		defer close(c.done)
		if c.conn, c.err = postgres.Connect(ctx, opt.DB); c.err != nil {
			return
		}
		// The slot exists before the backup starts, so the server keeps all
		// WAL from the backup's start until this stream has stored it.
		if c.err = c.conn.CreateSlot(ctx, c.slot, true); c.err != nil {
			c.conn.Close()
			c.conn = nil
		}
	}()
	return c
}

// discard closes the connection unused, once it is made; nil does nothing.
func (c *walConnect) discard() {
	if c == nil {
		return
	}
	<-c.done
	if c.conn != nil {
		c.conn.Close()
	}
}

// startWALStream prepares the stream on c's connection, waiting for it.
func startWALStream(ctx context.Context, opt Options, c *walConnect, wal *archive.WALWriter) (*walStream, error) {
	<-c.done
	if c.err != nil {
		return nil, c.err
	}
	ws := &walStream{conn: c.conn, slot: c.slot, wal: wal, opt: opt, finished: make(chan struct{}), flushes: NewFlushes()}
	ws.ctx, ws.cancel = context.WithCancel(ctx)
	return ws, nil
}

// begin is the backup's OnStart: stream from where the repository's WAL
// ends, when that is on the backup's timeline and before its start, so
// that a permanent stream resuming after this one (from the highest
// segment stored, as pg_receivewal does) skips nothing the server still
// kept; else, or when the server no longer has that WAL, from the
// backup's start position.
func (ws *walStream) begin(lsn postgres.LSN, tli uint32) {
	ws.started, ws.tli = true, tli
	from := lsn
	if rtli, end, ok, err := ws.wal.Resume(); err == nil && ok && rtli == tli && end < lsn {
		from = end
	}
	go func() {
		defer close(ws.finished)
		ws.err = ws.stream(tli, from)
		if from < lsn && errors.Is(ws.err, postgres.ErrWALRemoved) && ws.ctx.Err() == nil {
			ws.opt.Log.Info("the server no longer has the WAL between the repository's end and the backup's start; streaming from the backup's start",
				"op", "backup", "stored", from, "lsn", lsn)
			// The server dropped the temporary slot with the error.
			if ws.err = ws.conn.CreateSlot(ws.ctx, ws.slot, true); ws.err == nil {
				ws.err = ws.stream(tli, lsn)
			}
		}
	}()
}

// stream runs the backup's own stream from lsn until it is ended.
func (ws *walStream) stream(tli uint32, lsn postgres.LSN) error {
	return ws.conn.StreamWAL(ws.ctx, ws.wal, postgres.StreamOptions{TempSlot: ws.slot,
		StartTLI: tli, StartLSN: lsn, Log: ws.opt.Log, OnFlush: ws.flushes.Record,
		// The backup waits for this flush at its end: flush promptly.
		FlushInterval: 10 * time.Millisecond})
}

// waitFor blocks until WAL up to end is stored.
func (ws *walStream) waitFor(ctx context.Context, end postgres.LSN) error {
	return ws.flushes.Wait(ctx, ws.tli, end, ws.finished, func() error { return ws.err })
}

// end asks the stream to end cleanly (flushing what arrived) without
// waiting: a backup commits its files meanwhile.
func (ws *walStream) end() { ws.cancel() }

// stop ends the stream cleanly (flushing what arrived) and waits for it.
func (ws *walStream) stop() {
	ws.cancel()
	if ws.started {
		<-ws.finished
	}
	ws.conn.Close()
}

// awaitWAL waits until the repository holds WAL up to end: from the
// backup's own stream, or from another process streaming into it.
func awaitWAL(ctx context.Context, opt Options, repo *archive.Repo, ws *walStream, end postgres.LSN) error {
	if ws != nil {
		return ws.waitFor(ctx, end)
	}
	deadline := time.Now().Add(opt.WALWait)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, ok := repo.WALState(); ok && st.Flushed >= end {
			return nil
		}
		if err := streamerGone(opt, repo, end); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backup: another process streams WAL into %s but has not stored WAL up to %s within %s; check that 'clinicctl stream' (or the box) is running",
				repo.Dir, end, opt.WALWait)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// streamerGone returns an error when the process that streamed into the
// repository as the backup began has stopped without storing WAL up to
// end: nothing will store it, and the backup says so at once rather than
// after Options.WALWait. (A drive filling up stops the stream when its
// write finds no room: the backup may then find room again in what the
// stream left, and would wait in vain.) Not with Options.Streamed: the
// box's stream may not have taken the repository yet.
func streamerGone(opt Options, repo *archive.Repo, end postgres.LSN) error {
	if opt.Streamed {
		return nil
	}
	streaming, err := repo.WALStreaming()
	if err != nil || streaming {
		return err
	}
	if st, ok := repo.WALState(); ok && st.Flushed >= end {
		return nil // stored just before the stream stopped
	}
	return fmt.Errorf("backup: the process that streamed WAL into %s stopped before storing WAL up to %s (its own output says why); start 'clinicctl stream' again, then take the backup again",
		repo.Dir, end)
}
