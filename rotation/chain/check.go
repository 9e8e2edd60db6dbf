// Package chain keeps the box's logs tamper-evident (box step of the data
// path, anchored on the drives and in the vault): hash-chained entries
// signed with the box's key (or sealed, before signing), signed heads kept
// outside the box, and the one checker of the custody and audit logs.
package chain

import (
	"fmt"
	"slices"
)

// ProblemKind says what is wrong with a log, for an auditor's verdict.
type ProblemKind string

const (
	// Edited means an entry's contents do not match its hash.
	Edited ProblemKind = "edited entry"
	// Forged means a signature or seal does not match its entry.
	Forged ProblemKind = "forged signature"
	// OtherKey means an entry or head is signed by another key.
	OtherKey ProblemKind = "signed by another key"
	// Unsigned means an entry after the first signed one has no signature.
	Unsigned ProblemKind = "unsigned entry"
	// Reordered means entries were removed, inserted or moved.
	Reordered ProblemKind = "removed or reordered entries"
	// Truncated means the log ends before a head kept outside the box.
	Truncated ProblemKind = "truncated"
	// Rewritten means an entry differs from the one a head vouches for.
	Rewritten ProblemKind = "rewritten history"
	// BadAnchor means a head given as an anchor cannot be trusted.
	BadAnchor ProblemKind = "untrusted anchor"
	// Legacy is not a fault: entries sealed before the log was signed,
	// checkable only on the box.
	Legacy ProblemKind = "unsigned legacy part"
)

// Problem is one finding about a log.
type Problem struct {
	Kind ProblemKind
	// Index is the entry's position in what was checked, from 0; -1 when
	// the problem is not about one entry.
	Index int
	// Seq is the entry's sequence number, or where the log was cut.
	Seq    int64
	Reason string
}

// Fault reports whether the problem means the log cannot be trusted as it
// stands (every kind but Legacy).
func (p Problem) Fault() bool { return p.Kind != Legacy }

func (p Problem) String() string { return fmt.Sprintf("%s: %s", p.Kind, p.Reason) }

// Link is what Check needs of one entry of a hash-chained log.
type Link struct {
	Seq        int64
	Prev, Hash string
	// Sum is the hash computed from the entry's contents.
	Sum       [32]byte
	Seal, Sig []byte
	Key       string
}

// Spec describes a log for Check.
type Spec struct {
	// Name is the log's name in heads: "custody" or "audit".
	Name string
	// Purpose is what its entries are signed for.
	Purpose string
	// Continues reports whether the first entry may follow entries kept
	// elsewhere (a rotated file); otherwise it must be number 1.
	Continues bool
	Keys      Keys
	// Anchors are heads kept outside the box; others' Log names are skipped.
	Anchors []Head
}

// Check checks links in order and returns every problem found: hashes,
// signatures (or legacy seals), numbering and linking, and the anchors.
func Check(c Spec, links []Link) []Problem {
	var out []Problem
	var legacy legacyRun
	signed := false
	for i, l := range links {
		at := func(kind ProblemKind, why string) {
			out = append(out, Problem{Kind: kind, Index: i, Seq: l.Seq, Reason: fmt.Sprintf("entry %d (seq %d) %s", i+1, l.Seq, why)})
		}
		if p := checkLink(c, l, signed); p != "" {
			at(p, reasons[p])
		}
		switch {
		case len(l.Sig) > 0:
			signed = true
		case !signed && c.Keys.Legacy == nil && c.Keys.Public != nil:
			legacy.add(l.Seq)
		}
		if why := checkOrder(c, links, i); why != "" {
			at(Reordered, why)
		}
	}
	if legacy.from != 0 {
		out = append(out, legacy.problem(signed))
	}
	return append(out, checkAnchors(c, links)...)
}

// checkOrder says how entry i breaks the numbering or the linking of the
// log, or "".
func checkOrder(c Spec, links []Link, i int) string {
	l := links[i]
	switch {
	case i == 0 && !c.Continues && l.Seq != 1:
		return fmt.Sprintf("is numbered %d where 1 was expected: entries were removed from the start", l.Seq)
	case i == 0 && l.Seq == 1 && l.Prev != "":
		return "is the first entry but claims one before it"
	case i > 0 && l.Seq != links[i-1].Seq+1:
		return fmt.Sprintf("is numbered %d where %d was expected: entries were removed, inserted or reordered", l.Seq, links[i-1].Seq+1)
	case i > 0 && l.Prev != links[i-1].Hash:
		return "does not follow the entry before it: entries were removed, inserted or reordered"
	}
	return ""
}

// legacyRun is the run of entries sealed before signing, which only the
// box can check.
type legacyRun struct{ from, to int64 }

func (r *legacyRun) add(seq int64) {
	if r.from == 0 {
		r.from = seq
	}
	r.to = seq
}

// problem reports the run; signed says whether a signed entry follows it.
func (r legacyRun) problem(signed bool) Problem {
	why := fmt.Sprintf("entries %d to %d were sealed before signing (checkable only on the box)", r.from, r.to)
	if signed {
		why += fmt.Sprintf("; the signature of entry %d, which follows them, vouches for their chain", r.to+1)
	}
	return Problem{Kind: Legacy, Index: -1, Seq: r.from, Reason: why}
}

var reasons = map[ProblemKind]string{
	Edited:   "does not match its hash: its contents were edited",
	Forged:   "has a signature (or seal) that does not match it: it was rewritten without the box's key",
	OtherKey: "is signed by another key, not the box's",
	Unsigned: "is not signed though entries before it are: it was added without the box's signing key",
}

// checkLink checks one entry's hash and signature or seal.
func checkLink(c Spec, l Link, signed bool) ProblemKind {
	k := c.Keys
	switch {
	case HexSum(l.Sum) != l.Hash:
		return Edited
	case len(l.Sig) > 0 && k.Public != nil && l.Key != k.Public.String():
		return OtherKey
	case len(l.Sig) > 0 && k.Public != nil && k.Public.Verify(c.Purpose, l.Sum[:], l.Sig) != nil:
		return Forged
	case len(l.Sig) == 0 && signed:
		return Unsigned
	case len(l.Sig) == 0 && k.Legacy != nil && !k.Legacy.Check(l.Sum[:], l.Seal):
		return Forged
	}
	return ""
}

// checkAnchors compares the log with the heads kept outside the box.
func checkAnchors(c Spec, links []Link) []Problem {
	var out []Problem
	var last int64
	if n := len(links); n > 0 {
		last = links[n-1].Seq
	}
	var longest *Head
	for _, h := range c.Anchors {
		if h.Log != c.Name {
			continue
		}
		if c.Keys.Public != nil {
			if err := CheckHead(c.Keys.Public, h); err != nil {
				out = append(out, Problem{Kind: BadAnchor, Index: -1, Seq: h.Seq, Reason: err.Error() + "; it is ignored"})
				continue
			}
		}
		if i := slices.IndexFunc(links, func(l Link) bool { return l.Seq == h.Seq }); i >= 0 && links[i].Hash != h.Hash {
			out = append(out, Problem{Kind: Rewritten, Index: i, Seq: h.Seq, Reason: fmt.Sprintf("entry %d is not the one the head signed at %s shows: the log was rewritten from there or earlier", h.Seq, h.At.Format("2006-01-02 15:04:05Z07:00"))})
		}
		if h.Seq > last && (longest == nil || h.Seq > longest.Seq) {
			longest = &h
		}
	}
	if longest != nil {
		out = append(out, Problem{Kind: Truncated, Index: -1, Seq: last, Reason: fmt.Sprintf("truncated after entry %d: the head signed at %s shows entry %d, so entries %d to %d are missing", last, longest.At.Format("2006-01-02 15:04:05Z07:00"), longest.Seq, last+1, longest.Seq)})
	}
	return out
}
