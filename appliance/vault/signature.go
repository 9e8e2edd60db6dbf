package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

// The vault checks what a box signs (its logs' entries and heads, each
// base backup's statement) with the box's public signing key, pinned for
// the namespace: the key the repository info names (its "signer", from
// repository format 2 on), or else the key of the first log head the box
// sent, kept in logs/signer. A box whose tailnet identity is taken over
// can still upload, but nothing it sends under another key is taken for
// the box's.

var pinRel = filepath.Join(logsDir, "signer")

// signerKey returns the namespace's pinned key; pinned is false when none
// is pinned yet. fromRepo reports whether the repository info names it
// (repository format 2), which also makes every backup's signature
// required. b.mu is held.
func (b *box) signerKey() (key signer.PublicKey, pinned bool, err error) {
	key, fromRepo, err := b.repoSigner()
	if err != nil || fromRepo {
		return key, fromRepo, err
	}
	data, err := b.root.ReadFile(pinRel)
	if errors.Is(err, os.ErrNotExist) {
		return key, false, nil
	}
	if err == nil {
		key, err = signer.ParsePublic(string(data))
	}
	if err != nil {
		return key, false, fmt.Errorf("vault: the signing key pinned for %s: %w", b.ns, err)
	}
	return key, true, nil
}

// repoSigner returns the signer the repository info names, read from the
// stored file so that it needs no more of the format than this field.
func (b *box) repoSigner() (signer.PublicKey, bool, error) {
	var info struct {
		Signer string `json:"signer"`
	}
	data, err := b.root.ReadFile(inRepo("clinicbox-repo.json"))
	if errors.Is(err, os.ErrNotExist) {
		return signer.PublicKey{}, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &info)
	}
	if err != nil || info.Signer == "" {
		return signer.PublicKey{}, false, err
	}
	key, err := signer.ParsePublic(info.Signer)
	if err != nil {
		return key, false, fmt.Errorf("vault: the repository info of %s names a signer the vault cannot read: %w", b.ns, err)
	}
	return key, true, nil
}

// pin keeps key as the namespace's signing key. b.mu is held.
func (b *box) pin(key signer.PublicKey) error { return b.writeFile(pinRel, []byte(key.String()+"\n")) }

// signedSpan confirms a backup's span from its backup.sig, checked against
// the pinned key. In a namespace whose repository does not name a signer
// (format 1) a backup without one is not checked. b.mu is held.
func (b *box) signedSpan(a *Arrival) (Span, error) {
	key, pinned, err := b.signerKey()
	if err != nil {
		return Span{}, err
	}
	_, required, _ := b.repoSigner()
	data, err := b.root.ReadFile(filepath.Join(backupRel(a.ID), "backup.sig"))
	if errors.Is(err, os.ErrNotExist) { // not committed yet: this is its arrival
		data, err = b.root.ReadFile(filepath.Join(stagingRel(a.ID), "backup.sig"))
	}
	switch {
	case errors.Is(err, os.ErrNotExist) && !required:
		return a.Claimed, notApplicable("the repository (format 1) does not sign its backups")
	case errors.Is(err, os.ErrNotExist):
		return Span{}, errors.New("backup.sig is missing: this repository signs every backup")
	case err != nil:
		return Span{}, err
	case len(data) > maxExtra:
		return Span{}, errors.New("backup.sig is too long")
	case !pinned:
		return Span{}, errors.New("no signing key is pinned for this box to check backup.sig with")
	}
	st, err := archive.DecodeBackupSig(data, key)
	if err != nil {
		return Span{}, fmt.Errorf("backup.sig, checked with the box's key %s: %v", key, err)
	}
	if st.ID != a.ID || st.SystemID != b.repo.Info.SystemID {
		return Span{}, fmt.Errorf("backup.sig is the statement of backup %s of system %s, not of this one", st.ID, st.SystemID)
	}
	if st.Parent != a.Parent {
		return Span{}, fmt.Errorf("backup.sig names %q as the backup this one builds on; backup.json names %q", st.Parent, a.Parent)
	}
	return Span{Timeline: st.Timeline, Start: st.StartLSN, EndTimeline: st.EndTimeline, End: st.EndLSN}, nil
}

// notApplicable is a check that does not apply: it passes, saying why.
type notApplicable string

func (n notApplicable) Error() string { return string(n) }
