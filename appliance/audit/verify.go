package audit

import "github.com/clinicbox/clinicbox/rotation"

// ChainError names the first record that breaks the chain and why.
type ChainError struct {
	// Index is the record's position in what was checked, from 0; -1 when
	// the problem is not about one record.
	Index int
	// Seq is the sequence number the record carries.
	Seq int64
	// Kind is what is wrong.
	Kind rotation.ProblemKind
	// Reason says what is wrong, in plain words.
	Reason string
}

func (e *ChainError) Error() string { return "audit: verify: " + e.Reason }

// Verify checks that recs form an unbroken chain: every hash matches its
// record, every record follows the one before and is numbered next, and
// every signature (sealer is rotation.Keys with a public key) or seal
// verifies. The first record may continue a renamed older file (its Prev is
// then taken as given), unless it is numbered 1. It returns a *ChainError
// naming the first fault.
func Verify(recs []Record, sealer rotation.Sealer) error {
	for _, p := range Check(recs, rotation.KeysOf(sealer), nil) {
		if p.Fault() {
			return &ChainError{Index: p.Index, Seq: p.Seq, Kind: p.Kind, Reason: p.Reason}
		}
	}
	return nil
}

// Check returns every problem with recs: faults in the chain, the part
// sealed before signing, and how it compares with anchors.
func Check(recs []Record, keys rotation.Keys, anchors []rotation.Head) []rotation.Problem {
	links := make([]rotation.Link, len(recs))
	for i, r := range recs {
		links[i] = r.Link()
	}
	return rotation.CheckChain(rotation.Chain{Name: "audit", Purpose: Purpose, Continues: true, Keys: keys, Anchors: anchors}, links)
}

// Link is what rotation.CheckChain needs of the record: for a checker that
// holds the log in parts (the vault, which checks each batch it receives
// against the last record it holds).
func (r Record) Link() rotation.Link {
	return rotation.Link{Seq: r.Seq, Prev: r.Prev, Hash: r.Hash, Sum: r.sum(), Seal: r.Seal, Sig: r.Sig, Key: r.Key}
}
