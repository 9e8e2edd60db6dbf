package backup

import (
	"context"
	"fmt"
	"os"
	"sync"
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
	progress chan struct{} // a token after each flush

	mu      sync.Mutex
	flushed postgres.LSN
}

func startWALStream(ctx context.Context, opt Options, wal *archive.WALWriter) (*walStream, error) {
	conn, err := postgres.Connect(ctx, opt.DB)
	if err != nil {
		return nil, err
	}
	ws := &walStream{conn: conn, slot: fmt.Sprintf("clinicbox_backup_%d", os.Getpid()), wal: wal, opt: opt,
		finished: make(chan struct{}), progress: make(chan struct{}, 1)}
	// The slot exists before the backup starts, so the server keeps all WAL
	// from the backup's start until this stream has stored it.
	if err := conn.CreateSlot(ctx, ws.slot, true); err != nil {
		conn.Close()
		return nil, err
	}
	ws.ctx, ws.cancel = context.WithCancel(ctx)
	return ws, nil
}

// begin is the backup's OnStart: stream from the backup's start position.
func (ws *walStream) begin(lsn postgres.LSN, tli uint32) {
	ws.started = true
	go func() {
		defer close(ws.finished)
		ws.err = ws.conn.StreamWAL(ws.ctx, ws.wal, postgres.StreamOptions{TempSlot: ws.slot,
			StartTLI: tli, StartLSN: lsn, Log: ws.opt.Log, OnFlush: ws.onFlush,
			// The backup waits for this flush at its end: flush promptly.
			FlushInterval: 10 * time.Millisecond})
	}()
}

func (ws *walStream) onFlush(_ uint32, f postgres.LSN) {
	ws.mu.Lock()
	ws.flushed = f
	ws.mu.Unlock()
	select {
	case ws.progress <- struct{}{}:
	default:
	}
}

func (ws *walStream) reached(end postgres.LSN) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.flushed >= end
}

// waitFor blocks until WAL up to end is stored.
func (ws *walStream) waitFor(ctx context.Context, end postgres.LSN) error {
	for !ws.reached(end) {
		select {
		case <-ws.progress:
		case <-ws.finished:
			if ws.reached(end) {
				return nil
			}
			if ws.err != nil {
				return ws.err
			}
			return fmt.Errorf("backup: the WAL stream ended before %s", end)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

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
