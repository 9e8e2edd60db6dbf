package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// PositionReader reads how far the server's WAL has come, over one
// ordinary connection that it opens on first use and again after a
// failure. It is not safe for concurrent use.
type PositionReader struct {
	URL  string // the database URL, as for Open
	conn *pgx.Conn
}

// Read returns the server's current WAL position: the insert position of a
// primary, the received position of a standby.
func (r *PositionReader) Read(ctx context.Context) (LSN, error) {
	if r.conn == nil {
		conn, err := Open(ctx, r.URL)
		if err != nil {
			return 0, err
		}
		r.conn = conn
	}
	var text string
	err := r.conn.QueryRow(ctx, `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END)::text`).Scan(&text)
	if err != nil {
		r.Close()
		return 0, fmt.Errorf("postgres: read wal position: %w", err)
	}
	lsn, err := pglogrepl.ParseLSN(text)
	if err != nil {
		return 0, fmt.Errorf("postgres: read wal position: %w", err)
	}
	return lsn, nil
}

// Close closes the connection, if one is open.
func (r *PositionReader) Close() {
	if r.conn != nil {
		r.conn.Close(context.Background())
		r.conn = nil
	}
}
