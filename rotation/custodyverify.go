package rotation

import (
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// CustodyPurpose is what the box's signing key signs custody entries for;
// a signature made for another log or file never passes for one of these.
const CustodyPurpose = "custody log"

// HeadFile is the name of the heads file at the top of each drive, next to
// its identity file: the signed heads of the custody and audit logs.
const HeadFile = "custody-head.json"

// Verify checks that entries form an unbroken chain from the first entry
// (chain.Verify); sealer is chain.Keys with a public key to check
// signatures, or a plain Sealer for seals. It returns a *chain.Error naming
// the first fault.
func Verify(entries []Entry, sealer chain.Sealer) error {
	return chain.Verify(custodySpec(chain.KeysOf(sealer), nil), chain.Links(entries))
}

// Check returns every problem with a custody log: faults in its chain, the
// part sealed before signing, and how it compares with anchors (heads kept
// on the drives and in the vault).
func Check(entries []Entry, keys chain.Keys, anchors []chain.Head) []chain.Problem {
	return chain.Check(custodySpec(keys, anchors), chain.Links(entries))
}

func custodySpec(keys chain.Keys, anchors []chain.Head) chain.Spec {
	return chain.Spec{Name: "custody", Purpose: CustodyPurpose, Keys: keys, Anchors: anchors}
}

// Link is what chain.Check needs of the entry: for a checker that holds
// the log in parts (the vault, which checks each batch it receives
// against the last entry it holds).
func (e Entry) Link() chain.Link {
	return chain.Link{Seq: e.Seq, Prev: e.Prev, Hash: e.Hash, Sum: e.sum(), Seal: e.Seal, Sig: e.Sig, Key: e.Key}
}
