// Package audit is the box's audit log (box step of the data path): one line
// per request to its web pages and API, who asked, with what role, what for,
// and whether it was allowed and why, chained by hashes so that an edited,
// removed or moved line shows.
//
// The file is JSON lines, appended to and never rewritten, each record
// synced to disk before Append returns. Like the custody log
// (rotation.Entry) every record holds the hash of the one before it, and
// with chain.Keys the hash is signed with the box's signing key (or, in
// files written before that, sealed with an HMAC of the box key). When the
// file grows past MaxBytes it is renamed to NAME.1 (NAME.1 to NAME.2, and
// so on, the oldest past Keep removed) and the chain continues in a new
// file from the last hash, so the space it takes on the box's card stays
// bounded.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
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
	// Seal is the legacy HMAC tag over Hash, from before the log was
	// signed; empty in signed records.
	Seal []byte `json:"seal,omitempty"`
	// Sig is the box's signature of Hash for Purpose.
	Sig []byte `json:"sig,omitempty"`
	// Key is the text form of the public key that made Sig.
	Key string `json:"key,omitempty"`
}

// Purpose is what the box's signing key signs audit records for.
const Purpose = "audit log"

// Sizes of the log on the box's card. A record takes about 450 bytes
// signed; ordinary use (the front desk's and support's visits, with the
// pages' polling limited) is a few hundred records a day, about 200 KB.
// Nine files of 16 MiB hold about two years of that, and never more than
// 144 MiB; every record also goes to the vault, which keeps them all.
const (
	DefaultMaxBytes = 16 << 20
	DefaultKeep     = 8
)

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
	path string
	keys chain.Keys
	// MaxBytes is the size past which the file is renamed to path+".1";
	// zero means DefaultMaxBytes.
	MaxBytes int64
	// Keep is how many renamed files are kept (path+".1" the newest);
	// zero means DefaultKeep.
	Keep int
	// problems is what Open found wrong with the file.
	problems []string

	mu   sync.Mutex
	f    *os.File
	size int64
	last Record // the last record written; zero before the first
	torn bool   // a write failed, maybe leaving part of a line
}

// Open opens the log at path, creating it (mode 0600) if missing, checks
// what it holds and continues its chain from the last record it can read.
// sealer may be nil; chain.Keys signs new records. What is wrong with
// the file (a torn last line, unreadable lines, a broken chain) does not
// stop it: Problems reports it. The error is for the file being unusable.
func Open(path string, sealer chain.Sealer) (*Log, error) {
	recs, bad, err := Load(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	l := &Log{path: path, keys: chain.KeysOf(sealer)}
	for _, b := range bad {
		l.problems = append(l.problems, fmt.Sprintf("%s %s", path, b))
	}
	for _, p := range Check(recs, l.keys, nil) {
		if p.Fault() {
			l.problems = append(l.problems, fmt.Sprintf("%s: %s", path, p.Reason))
		}
	}
	if l.f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if l.size, err = EndLine(l.f); err != nil {
		l.f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if n := len(recs); n > 0 {
		l.last = recs[n-1]
	}
	return l, nil
}

// EndLine ends a torn last line with a newline, so that the next record
// starts a line of its own, and returns the file's size.
func EndLine(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, err
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, st.Size()-1); err != nil {
		return 0, err
	}
	if b[0] == '\n' {
		return st.Size(), nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return 0, err
	}
	return st.Size() + 1, f.Sync()
}

// Problems returns what Open found wrong with the file, in plain words;
// empty when nothing.
func (l *Log) Problems() []string { return l.problems }

// Head returns the signed head of the log at now; ok is false before the
// first record.
func (l *Log) Head(now time.Time) (h chain.Head, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.Seq == 0 {
		return chain.Head{}, false
	}
	return chain.SignHead(l.keys, "audit", l.last.Seq, l.last.Hash, now), true
}

// Path returns the file the log writes.
func (l *Log) Path() string { return l.path }

// Append chains r after the last record, signs it, writes it as one line,
// syncs it to disk and returns it as written: a request is reported done
// only once its record is durable.
func (l *Log) Append(r Record) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Seq, r.Prev, r.Seal, r.Sig, r.Key = l.last.Seq+1, l.last.Hash, nil, nil, ""
	sum := r.sum()
	r.Hash = hex.EncodeToString(sum[:])
	if k := l.keys; k.Signer != nil && k.Public != nil {
		r.Sig, r.Key = k.Signer.Sign(Purpose, sum[:]), k.Public.String()
	} else {
		r.Seal = k.Seal(sum[:])
	}
	line, err := json.Marshal(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %d: %w", r.Seq, err)
	}
	line = append(line, '\n')
	if l.torn {
		line = append([]byte{'\n'}, line...) // end the line a failed write left
	}
	if err := l.rotate(int64(len(line))); err != nil {
		return Record{}, err
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err == nil {
		err = l.f.Sync()
	}
	l.torn = err != nil
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %d: %w", r.Seq, err)
	}
	l.last = r
	return r, nil
}

// rotate renames a full file to path.1 (path.1 to path.2, and so on, the
// oldest past Keep removed) and starts a new one, before a line of n bytes
// is written.
func (l *Log) rotate(n int64) error {
	limit := l.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	keep := l.Keep
	if keep <= 0 {
		keep = DefaultKeep
	}
	if l.size == 0 || l.size+n <= limit {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", l.path, err)
	}
	l.f.Close()
	for i := keep; i >= 1; i-- {
		from := l.path
		if i > 1 {
			from = fmt.Sprintf("%s.%d", l.path, i-1)
		}
		if err := os.Rename(from, fmt.Sprintf("%s.%d", l.path, i)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("audit: rotate %s: %w", l.path, err)
		}
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = syncDir(filepath.Dir(l.path))
	}
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
