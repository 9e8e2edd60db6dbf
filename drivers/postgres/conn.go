// Package postgres is clinicbox's replication-protocol client, the server
// step of the data path: base backups, continuous WAL through physical
// slots, slot health and maintenance queries.
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
	id, err := pglogrepl.IdentifySystem(ctx, c.pg)
	if err != nil {
		return explainQuery(c.user, "IDENTIFY_SYSTEM", err)
	}
	c.System = System{ID: id.SystemID, Timeline: uint32(id.Timeline), XLogPos: id.XLogPos}
	for _, s := range []struct {
		name string
		set  func(string) error
	}{
		{"wal_segment_size", func(v string) (err error) { c.System.SegmentSize, err = parseSize(v); return }},
		{"server_version_num", func(v string) (err error) { c.System.ServerVersion, err = strconv.Atoi(v); return }},
		{"wal_level", func(v string) error { c.System.WALLevel = v; return nil }},
		{"block_size", func(v string) (err error) { c.System.BlockSize, err = strconv.Atoi(v); return }},
		{"max_slot_wal_keep_size", func(v string) error { c.System.MaxSlotKeepMB = parseMB(v); return nil }},
	} {
		v, err := c.show(ctx, s.name)
		if err != nil {
			return err
		}
		if err := s.set(v); err != nil {
			return fmt.Errorf("postgres: setting %s=%q: %w", s.name, v, err)
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

func (c *Conn) show(ctx context.Context, name string) (string, error) {
	res, err := c.pg.Exec(ctx, "SHOW "+name).ReadAll()
	if err != nil {
		return "", explainQuery(c.user, "SHOW "+name, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return "", fmt.Errorf("postgres: SHOW %s: unexpected result", name)
	}
	return string(res[0].Rows[0][0]), nil
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
