// Package signer holds the box's signing key, which proves that a backup, a
// WAL file, a drill report, a drive's identity or the head of a log was
// written by this box, and checks such signatures with the public key alone.
//
// Encryption (age) keeps the data secret, but anyone who knows the public
// recipients can encrypt: only a signature tells the box's own files from
// forgeries. The secret half lives on the box's /perm beside box.key and
// never leaves it; the public half is printed beside the recovery key and is
// the operator's trust anchor.
package signer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/durable"
)

// PublicPrefix starts the text form of a public signing key.
const PublicPrefix = "clinicbox-sign1-"

const secretPrefix = "CLINICBOX-SIGN-SECRET-1-"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Sentinel errors of Verify; the returned errors wrap them.
var (
	// ErrUnsigned means the thing carries no signature at all.
	ErrUnsigned = errors.New("not signed")
	// ErrOtherKey means it was signed, but by a key other than the trusted one.
	ErrOtherKey = errors.New("signed by another key")
	// ErrBadSignature means the signature does not match the content: it
	// was changed after signing.
	ErrBadSignature = errors.New("signature does not match")
)

// Key is the box's secret signing key.
type Key struct{ priv ed25519.PrivateKey }

// PublicKey is the public half of a Key: what the operator keeps.
type PublicKey [ed25519.PublicKeySize]byte

// Generate makes a new random key.
func Generate() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signer: generate: %w", err)
	}
	return &Key{priv: priv}, nil
}

// FromSeed makes the key with the given 32-byte seed (for tests).
func FromSeed(seed []byte) *Key { return &Key{priv: ed25519.NewKeyFromSeed(seed)} }

// LoadOrCreate reads the key from path, or creates it there (mode 0600,
// written durably) when the file does not exist.
func LoadOrCreate(path string) (*Key, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := Generate()
		if err != nil {
			return nil, err
		}
		text := secretPrefix + b32.EncodeToString(k.priv.Seed()) + "\n"
		if err := durable.WriteFile(path, []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("signer: store %s: %w", path, err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signer: read %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return nil, fmt.Errorf("signer: read %s: %w", path, err)
	}
	s, ok := strings.CutPrefix(string(bytes.TrimSpace(b)), secretPrefix)
	seed, err := b32.DecodeString(s)
	if !ok || err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signer: %s is not a clinicbox signing key; restore it from the box's backup of /perm, or remove it to make a new key (and give the new public key to everyone who checks this box's backups)", path)
	}
	return FromSeed(seed), nil
}

// Public returns the key's public half.
func (k *Key) Public() PublicKey {
	var p PublicKey
	copy(p[:], k.priv.Public().(ed25519.PublicKey))
	return p
}

// message binds a signature to what it is for, so a signature made for
// one purpose (a WAL segment, say) can never be passed off as another's.
func message(purpose string, msg []byte) []byte {
	m := make([]byte, 0, len("clinicbox\x00")+len(purpose)+1+len(msg))
	m = append(m, "clinicbox\x00"...)
	m = append(m, purpose...)
	m = append(m, 0)
	return append(m, msg...)
}

// Sign signs msg for purpose.
func (k *Key) Sign(purpose string, msg []byte) []byte {
	return ed25519.Sign(k.priv, message(purpose, msg))
}

// Verify checks that sig is p's signature of msg for purpose.
func (p PublicKey) Verify(purpose string, msg, sig []byte) error {
	if len(sig) == 0 {
		return ErrUnsigned
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(p[:], message(purpose, msg), sig) {
		return ErrBadSignature
	}
	return nil
}

// String is the text form: PublicPrefix, then base32 of the key and a
// four-byte checksum that catches a mistyped key.
func (p PublicKey) String() string {
	sum := sha256.Sum256(p[:])
	return PublicPrefix + strings.ToLower(b32.EncodeToString(append(p[:], sum[:4]...)))
}

// IsZero reports whether p is the zero value (no key).
func (p PublicKey) IsZero() bool { return p == PublicKey{} }

// ParsePublic reads the text form of a public key.
func ParsePublic(s string) (PublicKey, error) {
	var p PublicKey
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(strings.ToLower(s), PublicPrefix)
	b, err := b32.DecodeString(strings.ToUpper(rest))
	if !ok || err != nil || len(b) != len(p)+4 {
		return p, fmt.Errorf("signer: %q is not a box signing key (it starts with %s and is printed beside the recovery key)", short(s), PublicPrefix)
	}
	copy(p[:], b)
	if sum := sha256.Sum256(p[:]); !bytes.Equal(sum[:4], b[len(p):]) {
		return PublicKey{}, fmt.Errorf("signer: the box signing key %q has a typo (its checksum does not match); copy it again from the recovery sheet or the box's page", short(s))
	}
	return p, nil
}

// MarshalText implements encoding.TextMarshaler.
func (p PublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PublicKey) UnmarshalText(b []byte) error {
	q, err := ParsePublic(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
