package chain

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"time"
)

// HeadPurpose is what a log's head is signed for.
const HeadPurpose = "log head"

// Signer signs with the box's signing key (*signer.Key).
type Signer interface {
	Sign(purpose string, msg []byte) []byte
}

// PublicKey checks signatures with the public half of the box's signing
// key (signer.PublicKey). String is its text form, stored beside each
// signature so that a signature by another key can be told from a forged
// one.
type PublicKey interface {
	Verify(purpose string, msg, sig []byte) error
	String() string
}

// Keys are what a log is signed and checked with. Keys is also a Sealer,
// so that code that passes a log's Sealer around (the pages, the monthly
// report) checks signatures when handed Keys.
type Keys struct {
	// Signer signs new entries; nil leaves them to Legacy.
	Signer Signer
	// Public checks signatures; it must be set when Signer is. Nil checks
	// the chain of hashes only.
	Public PublicKey
	// Legacy is the HMAC seal of entries written before the log was signed.
	// Nil reports them as sealed before signing, checkable only on the box.
	Legacy Sealer
}

// Seal seals with Legacy, for logs that are not signed.
func (k Keys) Seal(hash []byte) []byte {
	if k.Legacy == nil {
		return nil
	}
	return k.Legacy.Seal(hash)
}

// Check checks a legacy seal.
func (k Keys) Check(hash, tag []byte) bool { return k.Legacy != nil && k.Legacy.Check(hash, tag) }

// KeysOf returns s as Keys: itself when it is Keys, a legacy seal
// otherwise.
func KeysOf(s Sealer) Keys {
	if k, ok := s.(Keys); ok {
		return k
	}
	return Keys{Legacy: s}
}

// Head is a log's latest entry, signed, kept outside the box (on every
// drive at eject, and in the vault) so that a log cut short shows.
type Head struct {
	// Log names the log: "custody" or "audit".
	Log  string `json:"log"`
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	// At is when the head was signed.
	At time.Time `json:"at"`
	// Key is the text form of the public key that signed it.
	Key string `json:"key"`
	Sig []byte `json:"sig"`
}

// message is what a head's signature covers.
func (h Head) message() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n%s", h.Log, h.Seq, h.Hash, h.At.UTC().Format(time.RFC3339Nano))
}

// SignHead returns the signed head of a log whose last entry is seq with
// hash, at now.
func SignHead(k Keys, log string, seq int64, hash string, now time.Time) Head {
	h := Head{Log: log, Seq: seq, Hash: hash, At: now.UTC()}
	if k.Signer != nil && k.Public != nil {
		h.Key = k.Public.String()
		h.Sig = k.Signer.Sign(HeadPurpose, h.message())
	}
	return h
}

// CheckHead checks a head's signature against pub. Its error says, in
// plain words, whether the head is unsigned, signed by another key, or
// forged.
func CheckHead(pub PublicKey, h Head) error {
	switch {
	case len(h.Sig) == 0:
		return fmt.Errorf("the %s head at entry %d is not signed", h.Log, h.Seq)
	case h.Key != pub.String():
		return fmt.Errorf("the %s head at entry %d is signed by another key (%s), not the box's %s", h.Log, h.Seq, h.Key, pub)
	case pub.Verify(HeadPurpose, h.message(), h.Sig) != nil:
		return fmt.Errorf("the %s head at entry %d has a forged signature: it was changed after the box signed it", h.Log, h.Seq)
	}
	return nil
}

// Heads is the document that carries a box's log heads: the file on each
// drive and the vault's copy.
type Heads struct {
	Heads []Head `json:"heads"`
}

// Sealer adds tamper evidence by key: without the key nobody can rewrite
// the chain from an edited entry onwards and recompute valid seals.
type Sealer interface {
	// Seal returns the tag for an entry's hash.
	Seal(hash []byte) []byte
	// Check reports whether tag is the seal for hash.
	Check(hash, tag []byte) bool
}

// HMACSealer seals entries with HMAC-SHA-256 under key.
func HMACSealer(key []byte) Sealer { return hmacSealer{key: key} }

type hmacSealer struct{ key []byte }

func (h hmacSealer) Seal(hash []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write(hash)
	return m.Sum(nil)
}

func (h hmacSealer) Check(hash, tag []byte) bool { return hmac.Equal(h.Seal(hash), tag) }
