package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jackc/pglogrepl"
)

var nan = math.NaN()

// scalar runs a one-value query as the superuser.
func (b *bench) scalar(ctx context.Context, sql string, dst any, args ...any) error {
	conn, err := b.pg.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql, args...).Scan(dst); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

func (b *bench) currentLSN(ctx context.Context) (pglogrepl.LSN, error) {
	var s string
	if err := b.scalar(ctx, "SELECT pg_current_wal_lsn()::text", &s); err != nil {
		return 0, err
	}
	return pglogrepl.ParseLSN(s)
}

// generateWAL runs pgbench (asynchronous commit, so that the backlog builds
// quickly) until the server has written at least size bytes of WAL.
func (b *bench) generateWAL(ctx context.Context, size int64) (from, to pglogrepl.LSN, err error) {
	if from, err = b.currentLSN(ctx); err != nil {
		return 0, 0, err
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := b.pg.Command(gctx, "pgbench", "-n", "-c", "4", "-j", "2", "-T", "3600", "postgres")
	cmd.Env = append(cmd.Env, "PGOPTIONS=-c synchronous_commit=off")
	load, err := startChild(cmd)
	if err != nil {
		return 0, 0, err
	}
	defer load.kill()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-load.done:
			return 0, 0, fmt.Errorf("pgbench stopped: %v\n%s", load.err, tail(load.out.String(), 1000))
		case <-tick.C:
		}
		at, err := b.currentLSN(ctx)
		if err != nil {
			return 0, 0, err
		}
		if int64(at-from) >= size {
			break
		}
	}
	load.kill()
	to, err = b.currentLSN(ctx)
	return from, to, err
}

// dropSlot drops a replication slot once no walsender uses it any more
// (a walsender outlives its client by a moment).
func (b *bench) dropSlot(ctx context.Context, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var active bool
		err := b.scalar(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", &active, name)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if !active {
			var dropped string
			return b.scalar(ctx, "SELECT pg_drop_replication_slot($1)::text", &dropped, name)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slot %s is still active after 30 s", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitActive waits until every named slot has a walsender streaming from it.
func (b *bench) waitActive(ctx context.Context, slots ...string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		if err := b.scalar(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = ANY($1) AND active", &n, slots); err != nil {
			return err
		}
		if n == len(slots) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slots %v not all active after a minute", slots)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// copySlot makes a new physical slot at the same restart position as src,
// so that every run drains the same backlog from the same start.
func (b *bench) copySlot(ctx context.Context, src, dst string) error {
	var name string
	return b.scalar(ctx, "SELECT slot_name::text FROM pg_copy_physical_replication_slot($1, $2)", &name, src, dst)
}

// receivewal runs pg_receivewal as the server's user over the same TCP
// connection string clinicctl uses.
func (b *bench) receivewal(ctx context.Context, args ...string) *exec.Cmd {
	return b.pg.Command(ctx, "pg_receivewal", append([]string{"-d", b.pg.URL()}, args...)...)
}
