package rotation

import (
	"encoding/hex"
	"fmt"
)

// ChainError names the first custody entry that breaks the chain and why.
type ChainError struct {
	// Index is the entry's position in the log, from 0.
	Index int
	// Seq is the sequence number the entry carries.
	Seq int64
	// Reason says what is wrong, in plain words.
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("rotation: verify custody log: entry %d (seq %d): %s", e.Index+1, e.Seq, e.Reason)
}

// Verify checks that entries form an unbroken chain from the first entry:
// every hash matches its entry's contents, every entry follows the one
// before it and is numbered next, and, when sealer is not nil, every seal
// verifies. It returns a *ChainError naming the first bad entry. Entries
// cut from the end leave an unbroken chain: compare the last hash with a
// copy kept elsewhere to detect that.
func Verify(entries []Entry, sealer Sealer) error {
	prev := ""
	for i, e := range entries {
		bad := func(format string, args ...any) error {
			return &ChainError{Index: i, Seq: e.Seq, Reason: fmt.Sprintf(format, args...)}
		}
		sum := e.sum()
		switch {
		case hexSum(sum) != e.Hash:
			return bad("its contents do not match its hash: the entry was edited")
		case sealer != nil && !sealer.Check(sum[:], e.Seal):
			return bad("its seal does not verify: the entry was written or rewritten without the box's key")
		case e.Seq != int64(i+1):
			return bad("it is numbered %d where %d was expected: entries were removed, inserted or reordered", e.Seq, i+1)
		case e.Prev != prev:
			return bad("it does not follow the entry before it: entries were removed, inserted or reordered")
		}
		prev = e.Hash
	}
	return nil
}

// hexSum writes a hash as the lowercase hex stored in Entry.Hash.
func hexSum(sum [32]byte) string { return hex.EncodeToString(sum[:]) }
