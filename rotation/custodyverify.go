package rotation

import "encoding/hex"

// ChainError names the first custody entry that breaks the chain and why.
type ChainError struct {
	// Index is the entry's position in the log, from 0; -1 when the
	// problem is not about one entry (a truncated log).
	Index int
	// Seq is the sequence number the entry carries.
	Seq int64
	// Kind is what is wrong.
	Kind ProblemKind
	// Reason says what is wrong, in plain words.
	Reason string
}

func (e *ChainError) Error() string {
	return "rotation: verify custody log: " + e.Reason
}

// Verify checks that entries form an unbroken chain from the first entry:
// every hash matches its entry's contents, every entry follows the one
// before it and is numbered next, and every signature (when sealer is Keys
// with a public key) or seal (a plain Sealer, or Keys' Legacy) verifies.
// It returns a *ChainError naming the first fault. Entries cut from the
// end leave an unbroken chain: Check against anchors detects that.
func Verify(entries []Entry, sealer Sealer) error {
	for _, p := range Check(entries, KeysOf(sealer), nil) {
		if p.Fault() {
			return &ChainError{Index: p.Index, Seq: p.Seq, Kind: p.Kind, Reason: p.Reason}
		}
	}
	return nil
}

// Check returns every problem with a custody log: faults in its chain, the
// part sealed before signing, and how it compares with anchors (heads kept
// on the drives and in the vault).
func Check(entries []Entry, keys Keys, anchors []Head) []Problem {
	links := make([]Link, len(entries))
	for i, e := range entries {
		links[i] = e.Link()
	}
	return CheckChain(Chain{Name: "custody", Purpose: CustodyPurpose, Keys: keys, Anchors: anchors}, links)
}

// Link is what CheckChain needs of the entry: for a checker that holds
// the log in parts (the vault, which checks each batch it receives
// against the last entry it holds).
func (e Entry) Link() Link {
	return Link{Seq: e.Seq, Prev: e.Prev, Hash: e.Hash, Sum: e.sum(), Seal: e.Seal, Sig: e.Sig, Key: e.Key}
}

// hexSum writes a hash as the lowercase hex stored in Entry.Hash.
func hexSum(sum [32]byte) string { return hex.EncodeToString(sum[:]) }
