// Package postgres is clinicbox's replication-protocol client: base backups,
// continuous WAL through physical slots, slot health and maintenance queries.
package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// LSN is a position in the write-ahead log.
type LSN = pglogrepl.LSN

// readBufferSize sizes the reader under the protocol decoder: base backups and
// WAL arrive as a stream of 8-64 KB messages, and a large buffer turns many
// small read syscalls into few large ones.
const readBufferSize = 1 << 20

// Conn is a physical replication connection.
type Conn struct {
	pg     *pgconn.PgConn
	rbuf   *bufio.Reader // under pg's protocol reader
	url    string
	user   string
	System System
}

// System is what IDENTIFY_SYSTEM and the server settings tell about the
// database system.
type System struct {
	ID            string // the system identifier, constant for a cluster's life
	Timeline      uint32
	XLogPos       LSN
	SegmentSize   uint64
	ServerVersion int // e.g. 150018
	WALLevel      string
	MaxSlotKeepMB int64 // max_slot_wal_keep_size in MB; -1 is unlimited
	BlockSize     int
}

// Connect opens a physical replication connection for a role with the
// REPLICATION attribute, identifies the system and checks that it can be
// backed up. Errors say what the operator should do.
func Connect(ctx context.Context, dbURL string) (*Conn, error) {
	cfg, err := replicationConfig(dbURL)
	if err != nil {
		return nil, err
	}
	c := &Conn{url: dbURL, user: cfg.User}
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		c.rbuf = bufio.NewReaderSize(r, readBufferSize)
		return pgproto3.NewFrontend(c.rbuf, w)
	}
	pg, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, explainConnect(cfg, err)
	}
	c.pg = pg
	if err := c.identify(ctx); err != nil {
		pg.Close(context.Background())
		return nil, err
	}
	return c, nil
}

func replicationConfig(dbURL string) (*pgconn.Config, error) {
	clean, t, err := prepareURL(dbURL, func(q url.Values) { q.Set("replication", "true") })
	if err != nil {
		return nil, err
	}
	cfg, err := pgconn.ParseConfig(clean)
	if err != nil {
		return nil, &Error{Problem: "the database URL cannot be read", Fix: "use the form postgres://ROLE:PASSWORD@SERVER:5432/postgres", Err: redact(err)}
	}
	if err := t.apply(cfg); err != nil {
		return nil, err
	}
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBufferSize), w)
	}
	return cfg, nil
}

// redact keeps passwords in URLs out of error messages.
func redact(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), "password", "pw"))
}

func (c *Conn) identify(ctx context.Context) error {
	settings := []struct {
		name string
		set  func(string) error
	}{
		{"wal_segment_size", func(v string) (err error) { c.System.SegmentSize, err = parseSize(v); return }},
		{"server_version_num", func(v string) (err error) { c.System.ServerVersion, err = strconv.Atoi(v); return }},
		{"wal_level", func(v string) error { c.System.WALLevel = v; return nil }},
		{"block_size", func(v string) (err error) { c.System.BlockSize, err = strconv.Atoi(v); return }},
		{"max_slot_wal_keep_size", func(v string) error { c.System.MaxSlotKeepMB = parseMB(v); return nil }},
	}
	queries := []string{"IDENTIFY_SYSTEM"}
	for _, s := range settings {
		queries = append(queries, "SHOW "+s.name)
	}
	rows, err := c.queryAll(ctx, queries)
	if err != nil {
		return err
	}
	if err := c.parseIdentify(rows[0]); err != nil {
		return err
	}
	for i, s := range settings {
		if len(rows[i+1]) != 1 {
			return fmt.Errorf("postgres: SHOW %s: unexpected result", s.name)
		}
		if err := s.set(rows[i+1][0]); err != nil {
			return fmt.Errorf("postgres: setting %s=%q: %w", s.name, rows[i+1][0], err)
		}
	}
	if c.System.ServerVersion < 150000 {
		return &Error{Problem: fmt.Sprintf("the server runs PostgreSQL %d; clinicbox needs 15 or newer", c.System.ServerVersion/10000),
			Fix: "upgrade the clinic's PostgreSQL server to version 15 or newer"}
	}
	if c.System.WALLevel == "minimal" {
		return &Error{Problem: "the server's wal_level is minimal, which cannot be backed up online",
			Fix: "set wal_level = replica in postgresql.conf and restart PostgreSQL"}
	}
	return nil
}

// parseIdentify reads IDENTIFY_SYSTEM's row: system identifier,
// timeline, WAL position, database.
func (c *Conn) parseIdentify(row []string) error {
	if len(row) < 3 {
		return errors.New("postgres: IDENTIFY_SYSTEM: unexpected result")
	}
	tli, err := strconv.ParseUint(row[1], 10, 32)
	if err != nil {
		return fmt.Errorf("postgres: IDENTIFY_SYSTEM: timeline %q: %w", row[1], err)
	}
	pos, err := pglogrepl.ParseLSN(row[2])
	if err != nil {
		return fmt.Errorf("postgres: IDENTIFY_SYSTEM: position %q: %w", row[2], err)
	}
	c.System = System{ID: row[0], Timeline: uint32(tli), XLogPos: pos}
	return nil
}

// queryAll sends simple queries at once and returns the first row of each
// answer. One round trip instead of one per query: every connection asks
// six questions before it starts, and on a busy server each answer waits
// for the backend to be scheduled. The first error is returned after every
// answer has been read, so the connection stays usable.
func (c *Conn) queryAll(ctx context.Context, queries []string) ([][]string, error) {
	fe := c.pg.Frontend()
	for _, q := range queries {
		fe.Send(&pgproto3.Query{String: q})
	}
	if err := fe.Flush(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", queries[0], err)
	}
	rows := make([][]string, len(queries))
	var first error
	for i := 0; i < len(queries); {
		msg, err := c.pg.ReceiveMessage(ctx)
		if err != nil {
			return nil, c.explainReceive(queries[i], err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			if rows[i] == nil {
				for _, v := range m.Values {
					rows[i] = append(rows[i], string(v))
				}
			}
		case *pgproto3.ErrorResponse:
			if first == nil {
				first = explainQuery(c.user, queries[i], pgErr(m))
			}
		case *pgproto3.ReadyForQuery:
			i++
		}
	}
	return rows, first
}

// parseSize reads sizes as SHOW prints them: "16MB", "1GB", "8kB".
func parseSize(v string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"kB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			x, err := strconv.ParseUint(n, 10, 64)
			return x * u.mult, err
		}
	}
	return strconv.ParseUint(v, 10, 64)
}

func parseMB(v string) int64 {
	if v == "-1" {
		return -1
	}
	n, err := parseSize(v)
	if err != nil {
		return -1
	}
	return int64(n >> 20)
}

// Close closes the connection.
func (c *Conn) Close() error { return c.pg.Close(context.Background()) }

// SegmentStart rounds lsn down to the start of its WAL segment.
func (s System) SegmentStart(lsn LSN) LSN { return lsn - lsn%LSN(s.SegmentSize) }
