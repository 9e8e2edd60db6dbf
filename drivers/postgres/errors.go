package postgres

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Error is a problem the operator must act on. Problem says what is wrong in
// plain words, Fix what to do.
type Error struct {
	Problem string
	Fix     string
	Err     error // the underlying error, if any
	// Retry reports whether trying again later may succeed without anyone
	// acting (the server is restarting or briefly unreachable).
	Retry bool
}

func (e *Error) Error() string {
	s := "postgres: " + e.Problem
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Action returns what the operator should do.
func (e *Error) Action() string { return e.Fix }

// ErrWALRemoved is wrapped by the error of a stream that asked for WAL the
// server no longer has.
var ErrWALRemoved = errors.New("WAL removed")

// ErrSlotInUse is returned when another client streams from the slot.
var ErrSlotInUse = errors.New("replication slot is in use")

func explainConnect(cfg *pgconn.Config, err error) error {
	where := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	if e := explainTrust(where, cfg.User, err); e != nil {
		return e
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "28P01":
			return &Error{Problem: fmt.Sprintf("the server at %s rejected the password for role %q", where, cfg.User),
				Fix: "check the password in the database URL (or reset it with ALTER ROLE ... PASSWORD)"}
		case (pgErr.Code == "28000" || pgErr.Code == "42501") && strings.Contains(pgErr.Message, "superuser or replication role"):
			return noReplication(cfg.User)
		case pgErr.Code == "28000" && strings.Contains(pgErr.Message, "pg_hba.conf"):
			return &Error{Problem: fmt.Sprintf("the server at %s does not allow replication connections from this box for role %q", where, cfg.User),
				Fix: fmt.Sprintf("add 'host replication %s BOX-ADDRESS/32 scram-sha-256' to pg_hba.conf and reload PostgreSQL", cfg.User)}
		case pgErr.Code == "57P03":
			return &Error{Problem: fmt.Sprintf("the server at %s is starting up or shutting down", where), Fix: "wait for it to finish", Retry: true, Err: pgErr}
		case pgErr.Code == "53300":
			return &Error{Problem: "the server has no free replication connections", Fix: "raise max_wal_senders in postgresql.conf and restart PostgreSQL"}
		}
		return &Error{Problem: fmt.Sprintf("the server at %s refused the connection", where), Fix: "see the server's message", Err: pgErr}
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.As(err, &netErr) || strings.Contains(err.Error(), "connect") {
		return &Error{Problem: fmt.Sprintf("cannot reach PostgreSQL at %s", where),
			Fix: "check that the server is running, that listen_addresses includes its LAN address, and that the firewall allows the port", Err: err, Retry: true}
	}
	return fmt.Errorf("postgres: connect %s: %w", where, err)
}

func noReplication(user string) error {
	return &Error{Problem: fmt.Sprintf("role %q may not use replication", user),
		Fix: fmt.Sprintf("run ALTER ROLE %s REPLICATION; as a superuser on the clinic server", user)}
}

func explainQuery(user, op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "55006" || strings.Contains(pgErr.Message, "is active for PID"):
			return &Error{Problem: "the replication slot is already in use by another client (" + pgErr.Message + ")",
				Fix: "stop the other clinicbox or pg_receivewal using it, or give this one its own slot", Err: ErrSlotInUse}
		case pgErr.Code == "42501" || strings.Contains(pgErr.Message, "permission denied"):
			return noReplication(user)
		case strings.Contains(pgErr.Message, "WAL level not sufficient") || strings.Contains(pgErr.Message, "wal_level"):
			return &Error{Problem: "the server's wal_level is too low for backups", Fix: "set wal_level = replica and restart PostgreSQL"}
		case strings.Contains(pgErr.Message, "has already been removed"):
			return &Error{Problem: "the server has already removed WAL this box still needed",
				Fix: "a new full backup is needed; keep the box's replication slot so the server retains WAL", Err: fmt.Errorf("%w: %s", ErrWALRemoved, pgErr.Message)}
		}
	}
	var big *pgproto3.ExceededMaxBodyLenErr
	if errors.As(err, &big) {
		err = tooLarge("", big)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}
