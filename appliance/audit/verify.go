package audit

import (
	"encoding/hex"
	"fmt"

	"github.com/clinicbox/clinicbox/rotation"
)

// ChainError names the first record that breaks the chain and why.
type ChainError struct {
	// Index is the record's position in what was checked, from 0.
	Index int
	// Seq is the sequence number the record carries.
	Seq int64
	// Reason says what is wrong, in plain words.
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: verify: record %d (seq %d): %s", e.Index+1, e.Seq, e.Reason)
}

// Verify checks that recs form an unbroken chain: every hash matches its
// record, every record follows the one before and is numbered next, and,
// when sealer is not nil, every seal verifies. The first record may
// continue a renamed older file (its Prev is then taken as given), unless
// it is numbered 1. It returns a *ChainError naming the first bad record.
func Verify(recs []Record, sealer rotation.Sealer) error {
	for i, r := range recs {
		bad := func(format string, args ...any) error {
			return &ChainError{Index: i, Seq: r.Seq, Reason: fmt.Sprintf(format, args...)}
		}
		sum := r.sum()
		switch {
		case hex.EncodeToString(sum[:]) != r.Hash:
			return bad("its contents do not match its hash: the record was edited")
		case sealer != nil && !sealer.Check(sum[:], r.Seal):
			return bad("its seal does not verify: the record was written without the box's key")
		case i == 0 && r.Seq == 1 && r.Prev != "":
			return bad("the first record claims a predecessor")
		case i == 0 && r.Seq < 1:
			return bad("it is numbered %d", r.Seq)
		case i > 0 && r.Seq != recs[i-1].Seq+1:
			return bad("it is numbered %d where %d was expected: records were removed, inserted or reordered", r.Seq, recs[i-1].Seq+1)
		case i > 0 && r.Prev != recs[i-1].Hash:
			return bad("it does not follow the record before it: records were removed, inserted or reordered")
		}
	}
	return nil
}
