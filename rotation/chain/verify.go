package chain

import "encoding/hex"

// Error names the first entry that breaks a log's chain and why.
type Error struct {
	// Log names the log: "custody" or "audit".
	Log string
	// Index is the entry's position in what was checked, from 0; -1 when
	// the problem is not about one entry (a truncated log).
	Index int
	// Seq is the sequence number the entry carries.
	Seq int64
	// Kind is what is wrong.
	Kind ProblemKind
	// Reason says what is wrong, in plain words.
	Reason string
}

func (e *Error) Error() string { return "verify " + e.Log + " log: " + e.Reason }

// Verify checks that links form an unbroken chain: every hash matches its
// entry's contents, every entry follows the one before it and is numbered
// next, and every signature (when spec's Keys has a public key) or seal
// verifies. It returns an *Error naming the first fault. Entries cut from
// the end leave an unbroken chain: Check against anchors detects that.
func Verify(spec Spec, links []Link) error {
	for _, p := range Check(spec, links) {
		if p.Fault() {
			return &Error{Log: spec.Name, Index: p.Index, Seq: p.Seq, Kind: p.Kind, Reason: p.Reason}
		}
	}
	return nil
}

// HexSum writes a hash as the lowercase hex stored in an entry's Hash.
func HexSum(sum [32]byte) string { return hex.EncodeToString(sum[:]) }

// Links returns what Check needs of each of a log's entries.
func Links[E interface{ Link() Link }](entries []E) []Link {
	links := make([]Link, len(entries))
	for i, e := range entries {
		links[i] = e.Link()
	}
	return links
}
