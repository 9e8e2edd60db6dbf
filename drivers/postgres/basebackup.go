package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// BackupOptions choose how the server prepares a base backup.
type BackupOptions struct {
	Label string
	// ServerZstdLevel > 0 asks the server to compress the archives with zstd
	// at that level (1 is fastest); 0 means the server sends plain tar.
	ServerZstdLevel int
	// Progress, when set, is called with bytes done and the server's
	// estimate of the total (0 when unknown). Without it the server skips
	// its estimate, a pass over the whole data directory.
	Progress func(done, total int64)
	// OnStart, when set, is called once the server has started the backup,
	// with its start position and timeline.
	OnStart func(lsn LSN, tli uint32)
}

// BackupSink receives a base backup's archives and manifest as they stream.
type BackupSink interface {
	// Archive starts a new archive: name as the server calls it ("base.tar",
	// "16385.tar.zst"), and the tablespace location ("" for the data directory).
	Archive(name, location string) (io.WriteCloser, error)
	// Manifest starts the backup manifest (JSON).
	Manifest() (io.WriteCloser, error)
}

// Tablespace is one tablespace of a base backup.
type Tablespace struct {
	OID      uint32 `json:"oid"`
	Location string `json:"location"`
	Size     int64  `json:"size_estimate"`
}

// BackupResult describes a finished base backup.
type BackupResult struct {
	StartLSN, EndLSN LSN
	Timeline         uint32 // the timeline the backup started on
	EndTimeline      uint32
	Tablespaces      []Tablespace
	Received         int64 // archive and manifest bytes received
	Start, End       time.Time
}

// BaseBackup takes a base backup over the PostgreSQL 15+ COPY sub-protocol
// and streams it into sink. It asks for a fast checkpoint and a manifest with
// CRC32C checksums.
//
// This is written against the protocol directly because pglogrepl's helpers
// predate the sub-protocol and produce broken tars on PostgreSQL 15.
func (c *Conn) BaseBackup(ctx context.Context, opt BackupOptions, sink BackupSink) (BackupResult, error) {
	res := BackupResult{Start: time.Now()}
	c.pg.Frontend().SendQuery(&pgproto3.Query{String: backupCommand(opt)})
	if err := c.pg.Frontend().Flush(); err != nil {
		return res, fmt.Errorf("postgres: send BASE_BACKUP: %w", err)
	}
	r := &backupReader{c: c, sink: sink, opt: opt}
	err := r.run(ctx, &res)
	if err != nil {
		r.abort()
		// The connection is mid-protocol after a failure; it cannot be reused.
		c.pg.Close(context.Background())
		return res, err
	}
	res.End = time.Now()
	return res, nil
}

func backupCommand(opt BackupOptions) string {
	label := strings.ReplaceAll(opt.Label, "'", "''")
	if label == "" {
		label = "clinicbox"
	}
	parts := []string{"LABEL '" + label + "'", "CHECKPOINT 'fast'", "WAIT false",
		"MANIFEST 'yes'", "MANIFEST_CHECKSUMS 'CRC32C'", "TARGET 'client'"}
	if opt.Progress != nil {
		// The server then sizes every file of the data directory before it
		// sends the first byte: only worth it when someone watches.
		parts = append(parts, "PROGRESS true")
	}
	if opt.ServerZstdLevel > 0 {
		parts = append(parts, "COMPRESSION 'zstd'", fmt.Sprintf("COMPRESSION_DETAIL 'level=%d'", opt.ServerZstdLevel))
	}
	return "BASE_BACKUP (" + strings.Join(parts, ", ") + ")"
}

// backupReader walks the result sets of BASE_BACKUP: start position,
// tablespaces, the COPY stream, end position.
type backupReader struct {
	c     *Conn
	sink  BackupSink
	opt   BackupOptions
	cur   io.WriteCloser
	sets  int // result sets completed
	rows  [][][]byte
	total int64
	// manifest is set once the manifest, the last and small part of
	// the COPY stream, follows: from then on every byte is read as it
	// comes, not waited for in batches.
	manifest bool
}

// backupTick bounds how long a base backup's reader waits for rcvLowat
// bytes before it takes what has arrived.
const backupTick = 20 * time.Millisecond

// run reads the backup's messages. The server sends its archives in
// messages of a few KB and the reader is faster than the server, so each
// wake-up used to find 20 KB on average: two read calls and a goroutine
// switch per 20 KB, and a goroutine started per message to watch ctx. The
// socket now wakes the reader once rcvLowat bytes wait (walsocket.go), a
// read deadline every backupTick picks up anything less (the small result
// sets around the archives), and ctx is watched once, as the WAL stream
// does.
func (r *backupReader) run(ctx context.Context, res *BackupResult) error {
	nc := r.c.pg.Conn()
	unwatch := context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Unix(1, 0)) })
	sock := newWALSocket(nc)
	sock.reset() // raised once archive data flows
	defer func() {
		unwatch()
		nc.SetReadDeadline(time.Time{})
		sock.reset()
	}()
	for {
		msg, err := r.receive(ctx, nc, sock)
		if err != nil {
			return err
		}
		if msg == nil {
			continue
		}
		switch m := msg.(type) {
		case *pgproto3.RowDescription, *pgproto3.NoticeResponse, *pgproto3.ParameterStatus, *pgproto3.CopyOutResponse:
		case *pgproto3.DataRow:
			r.rows = append(r.rows, copyRow(m.Values))
		case *pgproto3.CommandComplete:
			if err := r.resultSet(res); err != nil {
				return err
			}
		case *pgproto3.CopyData:
			if err := r.copyData(m.Data, res); err != nil {
				return err
			}
		case *pgproto3.CopyDone:
			if err := r.closeCurrent(); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return explainQuery(r.c.user, "BASE_BACKUP", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.ReadyForQuery:
			if res.EndLSN == 0 {
				return errors.New("postgres: base backup ended without an end position")
			}
			return nil
		default:
			return fmt.Errorf("postgres: base backup: unexpected message %T", m)
		}
	}
}

// receive waits for the next message, at most backupTick; a wait that
// times out lowers the socket's threshold to a byte and returns no message.
func (r *backupReader) receive(ctx context.Context, nc net.Conn, sock *walSocket) (pgproto3.BackendMessage, error) {
	if ctx.Err() != nil {
		return nil, fmt.Errorf("postgres: base backup: %w", ctx.Err())
	}
	nc.SetReadDeadline(time.Now().Add(backupTick))
	msg, err := r.c.pg.ReceiveMessage(context.Background())
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("postgres: base backup: %w", ctx.Err())
	case err != nil && pgconn.Timeout(err):
		sock.reset()
		return nil, nil
	case err != nil:
		return nil, r.c.explainReceive("base backup", err)
	}
	if m, ok := msg.(*pgproto3.CopyData); ok && len(m.Data) > 0 {
		r.manifest = r.manifest || m.Data[0] == 'm'
		if m.Data[0] == 'd' && !r.manifest {
			sock.set(rcvLowat)
		} else {
			sock.reset()
		}
	}
	return msg, nil
}

func copyRow(vals [][]byte) [][]byte {
	row := make([][]byte, len(vals))
	for i, v := range vals {
		if v != nil {
			row[i] = append([]byte{}, v...)
		}
	}
	return row
}

// resultSet handles a completed result set: first the start position, then
// the tablespace list, last the end position (the final CommandComplete of
// BASE_BACKUP itself carries no rows).
func (r *backupReader) resultSet(res *BackupResult) error {
	rows := r.rows
	r.rows = nil
	switch {
	case r.sets == 0 && len(rows) == 1:
		lsn, tli, err := lsnRow(rows[0])
		res.StartLSN, res.Timeline = lsn, tli
		r.sets++
		if err == nil && r.opt.OnStart != nil {
			r.opt.OnStart(lsn, tli)
		}
		return err
	case r.sets == 1:
		for _, row := range rows {
			ts := Tablespace{}
			if len(row) >= 3 {
				if row[0] != nil {
					oid, _ := strconv.ParseUint(string(row[0]), 10, 32)
					ts.OID = uint32(oid)
					ts.Location = string(row[1])
				}
				ts.Size, _ = strconv.ParseInt(string(row[2]), 10, 64)
				ts.Size *= 1024 // the server reports kilobytes
				r.total += ts.Size
			}
			res.Tablespaces = append(res.Tablespaces, ts)
		}
		r.sets++
	case r.sets == 2 && len(rows) == 1:
		lsn, tli, err := lsnRow(rows[0])
		res.EndLSN, res.EndTimeline = lsn, tli
		r.sets++
		return err
	}
	return nil
}

func lsnRow(row [][]byte) (LSN, uint32, error) {
	if len(row) < 2 {
		return 0, 0, errors.New("postgres: base backup: short position row")
	}
	lsn, err := pglogrepl.ParseLSN(string(row[0]))
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: base backup position %q: %w", row[0], err)
	}
	tli, err := strconv.ParseUint(string(row[1]), 10, 32)
	return lsn, uint32(tli), err
}

// copyData handles one message of the COPY sub-protocol: n = new archive
// (name and tablespace location, NUL-terminated), d = archive bytes,
// p = progress, m = the manifest follows.
func (r *backupReader) copyData(data []byte, res *BackupResult) error {
	if len(data) == 0 {
		return errors.New("postgres: base backup: empty COPY message")
	}
	body := data[1:]
	switch data[0] {
	case 'n':
		name, rest, _ := strings.Cut(string(body), "\x00")
		location, _, _ := strings.Cut(rest, "\x00")
		if name == "" || strings.ContainsAny(name, "/\\") || strings.Contains(name, "..") {
			return fmt.Errorf("postgres: base backup: refusing archive name %q", name)
		}
		return r.next(func() (io.WriteCloser, error) { return r.sink.Archive(name, location) })
	case 'm':
		return r.next(r.sink.Manifest)
	case 'd':
		if r.cur == nil {
			return errors.New("postgres: base backup: data before any archive")
		}
		if _, err := r.cur.Write(body); err != nil {
			return err
		}
		res.Received += int64(len(body))
	case 'p':
		if len(body) >= 8 && r.opt.Progress != nil {
			r.opt.Progress(int64(binary.BigEndian.Uint64(body)), r.total)
		}
	default:
		return fmt.Errorf("postgres: base backup: unknown COPY message type %q", data[0])
	}
	return nil
}

// next closes the archive being written and opens the next with open.
func (r *backupReader) next(open func() (io.WriteCloser, error)) error {
	if err := r.closeCurrent(); err != nil {
		return err
	}
	w, err := open()
	if err != nil {
		return err
	}
	r.cur = w
	return nil
}

func (r *backupReader) closeCurrent() error {
	if r.cur == nil {
		return nil
	}
	err := r.cur.Close()
	r.cur = nil
	return err
}

// abort releases a half-written archive without committing anything.
func (r *backupReader) abort() {
	if a, ok := r.cur.(interface{ Abort() }); ok {
		a.Abort()
	} else if r.cur != nil {
		r.cur.Close()
	}
	r.cur = nil
}
