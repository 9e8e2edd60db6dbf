package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SlotHealth is how much WAL a slot makes the server keep, and whether the
// server is about to give up on it.
type SlotHealth struct {
	Exists        bool
	Active        bool
	WALStatus     string // reserved, extended, unreserved (at risk), lost
	RetainedBytes int64  // WAL the server keeps for this slot
	SafeBytes     int64  // WAL that can still be written before the slot is lost; -1 without a limit
}

// AtRisk reports whether the server may soon remove WAL the slot needs.
func (h SlotHealth) AtRisk() bool { return h.WALStatus == "unreserved" || h.WALStatus == "lost" }

// ReadSlotHealth reads a slot's health over an ordinary (non-replication)
// connection; the role needs pg_monitor or pg_read_all_stats to see it.
func ReadSlotHealth(ctx context.Context, dbURL, slot string) (SlotHealth, error) {
	conn, err := Open(ctx, dbURL)
	if err != nil {
		return SlotHealth{}, err
	}
	defer conn.Close(context.Background())
	var h SlotHealth
	var status *string
	var safe *int64
	err = conn.QueryRow(ctx, `SELECT active, wal_status, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, safe_wal_size
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&h.Active, &status, &h.RetainedBytes, &safe)
	if err == pgx.ErrNoRows {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("postgres: slot %s health: %w", slot, err)
	}
	h.Exists = true
	if status != nil {
		h.WALStatus = *status
	}
	h.SafeBytes = -1
	if safe != nil {
		h.SafeBytes = *safe
	}
	return h, nil
}

// Open opens an ordinary (non-replication) connection to the URL's
// database, as careful with the password as Connect.
func Open(ctx context.Context, dbURL string) (*pgx.Conn, error) {
	cfg, err := plainConfig(dbURL)
	if err != nil {
		return nil, err
	}
	return connectDB(ctx, cfg, "", nil)
}
