// Package audit is the box's audit log: one line per request to its web
// pages and API, who asked, with what role, what for, and whether it was
// allowed and why, chained by hashes so that an edited, removed or moved
// line shows.
//
// The file is JSON lines, appended to and never rewritten. Like the custody
// log (rotation.Entry) every record holds the hash of the one before it;
// with a rotation.Sealer the hash is also sealed under the box's key. When
// the file grows past MaxBytes it is renamed to NAME.1 (replacing an older
// one) and the chain continues in a new file from the last hash, so the
// space it takes on the box's card stays bounded.
package audit

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/rotation"
)

// Record is one request and its outcome.
type Record struct {
	// Seq numbers records from 1, continuing across renamed files.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Caller is who asked, in short: "lan:192.168.1.20" or
	// "tailnet:laptop.clinic.ts.net".
	Caller string `json:"caller"`
	// Login and Tags are the tailnet identity's; empty on the LAN.
	Login string   `json:"login,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	// Role is what the caller was treated as: "staff", "support",
	// "admin", "setup", or "" for nobody.
	Role string `json:"role"`
	// Action is what was asked: "GET /api/status", "backup", "login".
	Action  string `json:"action"`
	Allowed bool   `json:"allowed"`
	// Why says why it was allowed or refused, in plain words.
	Why string `json:"why,omitempty"`
	// Prev is the hex SHA-256 Hash of the record before; empty for the
	// very first.
	Prev string `json:"prev"`
	// Hash is the hex SHA-256 of the fields above, Prev included.
	Hash string `json:"hash"`
	// Seal is the Sealer's tag over Hash; empty when the log is unsealed.
	Seal []byte `json:"seal,omitempty"`
}

// sum hashes the record's content and Prev; Time is hashed as RFC 3339
// text, which survives the JSON round trip.
func (r Record) sum() [sha256.Size]byte {
	b, err := json.Marshal([]any{r.Seq, r.Time.Format(time.RFC3339Nano), r.Caller, r.Login, r.Tags, r.Role, r.Action, r.Allowed, r.Why, r.Prev})
	if err != nil {
		panic(fmt.Sprintf("audit: hash record: %v", err)) // strings, bools and numbers always marshal
	}
	return sha256.Sum256(b)
}

// Log appends records to a file. Its methods are safe for concurrent use.
type Log struct {
	path   string
	sealer rotation.Sealer
	// MaxBytes is the size past which the file is renamed to path+".1";
	// zero means 8 MiB.
	MaxBytes int64

	mu   sync.Mutex
	f    *os.File
	size int64
	last Record // the last record written; zero before the first
}

// Open opens the log at path, creating it (mode 0600) if missing, verifies
// the chain of what it holds and continues it. sealer may be nil. A broken
// chain is an error (a *ChainError inside): the caller decides whether to
// set the file aside and start afresh.
func Open(path string, sealer rotation.Sealer) (*Log, error) {
	recs, err := ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if err := Verify(recs, sealer); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l := &Log{path: path, sealer: sealer, f: f, size: st.Size()}
	if n := len(recs); n > 0 {
		l.last = recs[n-1]
	}
	return l, nil
}

// Path returns the file the log writes.
func (l *Log) Path() string { return l.path }

// Append chains r after the last record, seals it, writes it as one line
// and returns it as written.
func (l *Log) Append(r Record) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Seq, r.Prev, r.Seal = l.last.Seq+1, l.last.Hash, nil
	sum := r.sum()
	r.Hash = hex.EncodeToString(sum[:])
	if l.sealer != nil {
		r.Seal = l.sealer.Seal(sum[:])
	}
	line, err := json.Marshal(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %d: %w", r.Seq, err)
	}
	line = append(line, '\n')
	if err := l.rotate(int64(len(line))); err != nil {
		return Record{}, err
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %d: %w", r.Seq, err)
	}
	l.last = r
	return r, nil
}

// rotate renames a full file to path.1 and starts a new one, before a
// line of n bytes is written.
func (l *Log) rotate(n int64) error {
	limit := l.MaxBytes
	if limit <= 0 {
		limit = 8 << 20
	}
	if l.size == 0 || l.size+n <= limit {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", l.path, err)
	}
	l.f.Close()
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit: rotate %s: %w", l.path, err)
	}
	l.f, l.size = f, 0
	return nil
}

// Close syncs and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Tail returns up to n of the most recent records in the current file,
// oldest first.
func (l *Log) Tail(n int) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs, err := ReadFile(l.path)
	if err != nil {
		return nil, err
	}
	if len(recs) > n {
		recs = recs[len(recs)-n:]
	}
	return recs, nil
}

// ReadFile reads the records of one log file, oldest first. It does not
// verify them.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("audit: read %s line %d: %w", path, line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", path, err)
	}
	return out, nil
}
