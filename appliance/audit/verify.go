package audit

import "github.com/clinicbox/clinicbox/rotation/chain"

// Verify checks that recs form an unbroken chain (chain.Verify); sealer is
// chain.Keys with a public key to check signatures, or a plain Sealer for
// seals. The first record may continue a renamed older file (its Prev is
// then taken as given), unless it is numbered 1. It returns a *chain.Error
// naming the first fault.
func Verify(recs []Record, sealer chain.Sealer) error {
	return chain.Verify(spec(chain.KeysOf(sealer), nil), chain.Links(recs))
}

// Check returns every problem with recs: faults in the chain, the part
// sealed before signing, and how it compares with anchors.
func Check(recs []Record, keys chain.Keys, anchors []chain.Head) []chain.Problem {
	return chain.Check(spec(keys, anchors), chain.Links(recs))
}

func spec(keys chain.Keys, anchors []chain.Head) chain.Spec {
	return chain.Spec{Name: "audit", Purpose: Purpose, Continues: true, Keys: keys, Anchors: anchors}
}

// Link is what chain.Check needs of the record: for a checker that holds
// the log in parts (the vault, which checks each batch it receives
// against the last record it holds).
func (r Record) Link() chain.Link {
	return chain.Link{Seq: r.Seq, Prev: r.Prev, Hash: r.Hash, Sum: r.sum(), Seal: r.Seal, Sig: r.Sig, Key: r.Key}
}
