package rotation

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

// Entry is one line of the custody log: a movement of media or a change to
// the rotation, who was responsible, and what the box decided. Each entry
// holds the hash of the one before it, so an entry that is edited, removed
// or moved breaks the chain.
type Entry struct {
	// Seq numbers entries from 1 without gaps.
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Drive      DriveID   `json:"drive,omitempty"`
	Generation string    `json:"generation,omitempty"`
	// Event is what happened, such as "insert" or "remove".
	Event string `json:"event"`
	// Who is the staff member responsible; empty when unknown.
	Who      string   `json:"who,omitempty"`
	Decision Kind     `json:"decision"`
	Reasons  []string `json:"reasons"`
	// Prev is the hex SHA-256 Hash of the previous entry; empty for the
	// first.
	Prev string `json:"prev"`
	// Hash is the hex SHA-256 of this entry's fields above, Prev included.
	Hash string `json:"hash"`
	// Seal is the legacy HMAC tag over Hash, from before the log was
	// signed; empty in signed entries.
	Seal []byte `json:"seal,omitempty"`
	// Sig is the box's signature of Hash for CustodyPurpose; empty in
	// entries written before the log was signed.
	Sig []byte `json:"sig,omitempty"`
	// Key is the text form of the public key that made Sig.
	Key string `json:"key,omitempty"`
}

// EntryFor makes the custody entry for an event and the decision on it.
// Append fills in Seq, Prev, Hash and Sig (or Seal).
func EntryFor(ev Event, dec Decision, now time.Time) Entry {
	drive := dec.Drive
	if drive == "" {
		drive = ev.Drive
	}
	if drive == "" {
		drive = ev.Identity.ID
	}
	return Entry{Time: now, Drive: drive, Generation: dec.Generation, Event: string(ev.Kind), Who: ev.Who, Decision: dec.Kind, Reasons: dec.Reasons}
}

// sum returns the SHA-256 of the entry's content and Prev. Time is hashed
// as RFC 3339 text, which survives a JSON round trip unchanged.
func (e Entry) sum() [sha256.Size]byte {
	b, err := json.Marshal([]any{e.Seq, e.Time.Format(time.RFC3339Nano), e.Drive, e.Generation, e.Event, e.Who, e.Decision, e.Reasons, e.Prev})
	if err != nil {
		panic(fmt.Sprintf("rotation: hash custody entry: %v", err)) // strings and numbers always marshal
	}
	return sha256.Sum256(b)
}

// Log is an append-only custody log in memory. The appliance writes each
// appended entry to its file with WriteEntries.
type Log struct {
	entries []Entry
	keys    chain.Keys
}

// NewLog verifies entries read back from storage and returns a log that
// continues them. sealer may be nil for an unsealed log; Keys with a
// Signer signs every new entry, continuing a log sealed before signing.
func NewLog(entries []Entry, sealer chain.Sealer) (*Log, error) {
	if err := Verify(entries, sealer); err != nil {
		return nil, err
	}
	return Continue(entries, sealer), nil
}

// Continue returns a log that continues entries without checking them:
// for a box whose log is damaged, which records the damage and carries on.
func Continue(entries []Entry, sealer chain.Sealer) *Log {
	return &Log{entries: entries, keys: chain.KeysOf(sealer)}
}

// Append chains e after the last entry, signs (or seals) it, stores it and
// returns it.
func (l *Log) Append(e Entry) Entry {
	e.Seq, e.Prev, e.Seal, e.Sig, e.Key = 1, "", nil, nil, ""
	if n := len(l.entries); n > 0 {
		e.Seq, e.Prev = l.entries[n-1].Seq+1, l.entries[n-1].Hash
	}
	sum := e.sum()
	e.Hash = chain.HexSum(sum)
	if k := l.keys; k.Signer != nil && k.Public != nil {
		e.Sig, e.Key = k.Signer.Sign(CustodyPurpose, sum[:]), k.Public.String()
	} else {
		e.Seal = k.Seal(sum[:])
	}
	l.entries = append(l.entries, e)
	return e
}

// Head returns the signed head of the log at now; ok is false when the
// log is empty.
func (l *Log) Head(now time.Time) (h chain.Head, ok bool) {
	n := len(l.entries)
	if n == 0 {
		return chain.Head{}, false
	}
	return chain.SignHead(l.keys, "custody", l.entries[n-1].Seq, l.entries[n-1].Hash, now), true
}

// Entries returns the log's entries, oldest first.
func (l *Log) Entries() []Entry { return l.entries }
