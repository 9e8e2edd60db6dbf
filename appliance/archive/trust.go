package archive

import (
	"errors"
	"fmt"

	"github.com/clinicbox/clinicbox/appliance/signer"
)

// Format 2 adds authenticity to format 1's confidentiality: age keeps the
// data secret, but anyone with the public recipients can encrypt, so every
// backup and every WAL file in a format 2 repository also carries the box's
// signature over its content. Readers check it against a trust anchor the
// operator holds (the box's public signing key), never against a key the
// repository names.

// ErrNoTrustAnchor means a signed repository was read without the box's
// public signing key to check it against.
var ErrNoTrustAnchor = errors.New("no box signing key to check the repository's signatures against")

// ErrNoSigner means a repository was to be written without the box's
// signing key.
var ErrNoSigner = errors.New("archive: no box signing key to sign the repository with")

// ErrForged means a file is not the box's: unsigned where a signature is
// required, signed by another key, or changed after signing.
var ErrForged = errors.New("not written by the trusted box")

// signWith makes the repository sign what is written to it from now on. A
// format 1 repository becomes format 2: what it already holds stays
// readable, reported as unsigned, and anything from the end of what it
// holds on must be signed.
func (r *Repo) signWith(k *signer.Key) error {
	if k == nil {
		return ErrNoSigner
	}
	r.sign = k
	pub := k.Public().String()
	switch {
	case r.Info.Format == 1:
		end, err := r.storedEnd()
		if err != nil {
			return err
		}
		r.Info.Format, r.Info.Signer, r.Info.SignedFrom = FormatVersion, pub, end
	case r.Info.Signer != pub:
		return fmt.Errorf("archive: %s is signed by box key %s, not this box's %s; use a drive or directory of this box", r.Dir, r.Info.Signer, pub)
	default:
		return nil
	}
	return r.writeInfo()
}

// storedEnd is the end of what the repository holds: past its last WAL
// segment and its newest backup.
func (r *Repo) storedEnd() (LSN, error) {
	var end LSN
	tls, err := r.Timelines()
	if err != nil {
		return 0, err
	}
	for _, tl := range tls {
		for _, s := range tl.Segments {
			end = max(end, LSN((s.SegNo+1)*r.Info.SegmentSize))
		}
	}
	done, _, err := r.Backups()
	if err != nil {
		return 0, err
	}
	for _, b := range done {
		end = max(end, b.EndLSN)
	}
	return end, nil
}

// Trust sets the key the repository's signatures are checked against.
func (r *Repo) Trust(p signer.PublicKey) { r.trust = &p }

// TrustRecorded trusts the key the repository itself names: only for a
// first use that the caller reports loudly (the operator must compare the
// key with the recovery sheet), or for tests.
func (r *Repo) TrustRecorded() error {
	if r.Info.Signer == "" {
		return nil
	}
	p, err := signer.ParsePublic(r.Info.Signer)
	if err != nil {
		return fmt.Errorf("archive: %s names a damaged signing key: %w", infoFile, err)
	}
	r.Trust(p)
	return nil
}

// TrustedKey is the text of the key the repository's signatures are
// checked against, or "" when none is set.
func (r *Repo) TrustedKey() string {
	if r.trust == nil {
		return ""
	}
	return r.trust.String()
}

// Signed reports whether the repository is of format 2 (signed).
func (r *Repo) Signed() bool { return r.Info.Format >= 2 }

// unsignedOK says whether a file without a signature, at position at, is
// acceptable: in a format 1 repository, or in a format 2 repository that
// was format 1 before at. It returns the note to show.
func (r *Repo) unsignedOK(at LSN) (string, bool) {
	if !r.Signed() {
		return "the repository is unsigned: it was written before format 2, so nothing proves the box wrote it; restore it only if it never left the practice's hands", true
	}
	if at < r.Info.SignedFrom {
		return fmt.Sprintf("part of the repository (before %s) is unsigned: it was written before format 2", r.Info.SignedFrom), true
	}
	return "", false
}

// verifySig checks a signature against the trust anchor.
func (r *Repo) verifySig(purpose string, msg, sig []byte) error {
	key, err := r.anchor()
	if err != nil {
		return err
	}
	return verifyForged(key, purpose, msg, sig)
}

// anchor is the key the repository's signatures are checked against.
func (r *Repo) anchor() (signer.PublicKey, error) {
	if r.trust == nil {
		return signer.PublicKey{}, fmt.Errorf("archive: %w; pass --box-key with the key printed beside the recovery key (clinicbox-sign1-...)", ErrNoTrustAnchor)
	}
	return *r.trust, nil
}

// verifyForged checks sig against key, saying what a failure means.
func verifyForged(key signer.PublicKey, purpose string, msg, sig []byte) error {
	if err := key.Verify(purpose, msg, sig); err != nil {
		return fmt.Errorf("%w (%v): it may be forged; do not restore it, and keep the drive for investigation", ErrForged, err)
	}
	return nil
}

// OpenFirstUse opens a repository trusting the signing key it names, as at
// a first use: the caller must show that key to the operator, who compares
// it with the recovery sheet.
func OpenFirstUse(dir string) (*Repo, error) {
	r, err := Open(dir)
	if err != nil {
		return nil, err
	}
	return r, r.TrustRecorded()
}

// CreateStore opens or creates a repository that holds what another
// writer sealed and signed (the vault, for a box): it signs nothing and
// checks nothing that needs the key. info comes from that writer.
func CreateStore(dir string, info Info) (*Repo, error) {
	if info.Format == 0 {
		info.Format = 1 // boxes from before format 2 did not say
	}
	if info.Format < 1 || info.Format > FormatVersion {
		return nil, fmt.Errorf("archive: repository format %d is not one this vault stores (1 to %d): update the vault", info.Format, FormatVersion)
	}
	if info.Format >= 2 {
		if _, err := signer.ParsePublic(info.Signer); err != nil {
			return nil, fmt.Errorf("archive: a format 2 repository must name its signing key: %w", err)
		}
	}
	r, err := create(dir, info, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Info.Format == info.Format && r.Info.Signer == info.Signer:
		return r, nil
	case r.Info.Format == 1 && info.Format >= 2:
		// The box was updated: what the store holds stays as it was,
		// unsigned; from its end on everything must be signed.
		end, err := r.storedEnd()
		if err != nil {
			return nil, err
		}
		r.Info.Format, r.Info.Signer, r.Info.SignedFrom = info.Format, info.Signer, end
		return r, r.writeInfo()
	}
	return nil, fmt.Errorf("archive: %s holds format %d signed by %q; the box sends format %d signed by %q: a box's signing key never changes, so this is another box or a replaced one (ask the vault's operator)",
		dir, r.Info.Format, r.Info.Signer, info.Format, info.Signer)
}
