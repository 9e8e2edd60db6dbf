package fault

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/jackc/pglogrepl"
)

// ledger is a workload that knows where each of its commits ends in the
// WAL: one connection inserts numbered rows, one per transaction, and
// after each commit reads pg_current_wal_insert_lsn(), which is at or past
// the end of that commit's record. A restore that holds WAL up to a
// position must hold every row whose recorded position is at or before it.
type ledger struct {
	mu   sync.Mutex
	lsns []postgres.LSN // lsns[i] is the bound for row i+1

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

const ledgerTable = "fault_ledger"

// startLedger creates the table and commits rows until stopped. Every
// switchEvery commits it also completes the WAL segment (as
// archive_timeout would), so segment ends are crossed often.
func startLedger(t *testing.T, c *pgtest.Cluster, switchEvery int) *ledger {
	t.Helper()
	c.MustExec(t, "CREATE TABLE IF NOT EXISTS "+ledgerTable+" (seq bigint PRIMARY KEY, at timestamptz DEFAULT now())")
	ctx, cancel := context.WithCancel(context.Background())
	l := &ledger{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.err = l.run(ctx, c, switchEvery)
	}()
	t.Cleanup(l.stop)
	return l
}

func (l *ledger) run(ctx context.Context, c *pgtest.Cluster, switchEvery int) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	pace := time.NewTicker(5 * time.Millisecond) // at most 200 commits a second: the machine is shared
	defer pace.Stop()
	for seq := int64(1); ctx.Err() == nil; seq++ {
		select {
		case <-pace.C:
		case <-ctx.Done():
			return nil
		}
		if _, err := conn.Exec(ctx, "INSERT INTO "+ledgerTable+" (seq) VALUES ($1)", seq); err != nil {
			return ignoreCancel(ctx, err)
		}
		var s string
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
			return ignoreCancel(ctx, err)
		}
		lsn, err := pglogrepl.ParseLSN(s)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.lsns = append(l.lsns, lsn)
		l.mu.Unlock()
		if switchEvery > 0 && seq%int64(switchEvery) == 0 {
			if _, err := conn.Exec(ctx, "SELECT pg_switch_wal()"); err != nil {
				return ignoreCancel(ctx, err)
			}
		}
	}
	return nil
}

func ignoreCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("ledger: %w", err)
}

// stop ends the workload and waits for it.
func (l *ledger) stop() {
	l.cancel()
	<-l.done
}

// committedBy returns how many rows (1..n) were committed with their
// commit record at or before lsn.
func (l *ledger) committedBy(lsn postgres.LSN) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(l.lsns) && l.lsns[n] <= lsn {
		n++
	}
	return n
}

// commits is how many rows were committed in all.
func (l *ledger) commits() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lsns)
}
