package appliance

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/durable"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// Key is the box's own secret: an age identity kept on the box's persistent
// storage, never on a drive. From it the box derives the key that seals the
// custody log (and the one that signed drive identities before Signer
// did), so one file (backed up on paper as the practice's recovery key, or
// not) is all there is to guard.
type Key struct {
	Identity *age.X25519Identity
	// Signer is the box's signing key (box.sign beside box.key): random,
	// never derived from the recovery key, never on a drive or on paper. It
	// signs backups, WAL, drill reports, drive identities and log heads.
	Signer  *signer.Key
	sign    ed25519.PrivateKey
	custody []byte
}

// LoadKey reads the box key from path, and the signing key from box.sign in
// the same directory, creating either (mode 0600) on first run.
func LoadKey(path string) (*Key, error) {
	k, err := loadAgeKey(path)
	if err != nil {
		return nil, err
	}
	if k.Signer, err = signer.LoadOrCreate(filepath.Join(filepath.Dir(path), "box.sign")); err != nil {
		return nil, fmt.Errorf("appliance: %w", err)
	}
	return k, nil
}

func loadAgeKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, fmt.Errorf("appliance: generate box key: %w", err)
		}
		if err := durable.WriteFile(path, []byte(id.String()+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("appliance: store box key: %w", err)
		}
		return newKey(id), nil
	}
	if err != nil {
		return nil, fmt.Errorf("appliance: read box key: %w", err)
	}
	id, err := age.ParseX25519Identity(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, fmt.Errorf("appliance: box key %s is damaged: %v; restore it from the recovery sheet", path, err)
	}
	return newKey(id), nil
}

func newKey(id *age.X25519Identity) *Key {
	derive := func(label string) [32]byte { return sha256.Sum256([]byte(label + "\n" + id.String())) }
	seed := derive("clinicbox drive identity signing v1")
	ck := derive("clinicbox custody log sealing v1")
	return &Key{Identity: id, sign: ed25519.NewKeyFromSeed(seed[:]), custody: ck[:]}
}

// Recipient is the box key's public half.
func (k *Key) Recipient() string { return k.Identity.Recipient().String() }

// Identities are what the box decrypts its repositories with.
func (k *Key) Identities() []age.Identity { return []age.Identity{k.Identity} }

// drivePurpose is what a drive identity's signature is for.
const drivePurpose = "drive-identity"

// driveMessage is what a drive identity's signature covers: the ID with
// the filesystem UUID and serial the drive was enrolled with, so the
// identity file copied onto another drive is not that drive's.
func driveMessage(id rotation.Identity) []byte {
	b, _ := json.Marshal([]string{string(id.ID), id.FSUUID, id.Serial})
	return b
}

// SignDrive signs a drive's identity with the box's signing key.
func (k *Key) SignDrive(id rotation.Identity) []byte {
	return k.Signer.Sign(drivePurpose, driveMessage(id))
}

// driveSigning says how a drive's identity is signed.
type driveSigning int

const (
	unsignedDrive  driveSigning = iota // not by this box
	oldSignedDrive                     // by this box before signatures covered the filesystem and serial: over the ID alone, with the key derived from box.key
	signedDrive                        // by this box's signing key, over ID, filesystem UUID and serial
)

func (k *Key) driveSigning(id rotation.Identity) driveSigning {
	if k.Signer != nil && k.Signer.Public().Verify(drivePurpose, driveMessage(id), id.Signature) == nil {
		return signedDrive
	}
	if len(id.Signature) == ed25519.SignatureSize && ed25519.Verify(k.sign.Public().(ed25519.PublicKey), []byte(id.ID), id.Signature) {
		return oldSignedDrive
	}
	return unsignedDrive
}

// VerifyDrive reports whether a drive's identity carries this box's
// signature, including the older one over the ID alone (such a drive is
// signed again the next time the box writes to it).
func (k *Key) VerifyDrive(id rotation.Identity) bool { return k.driveSigning(id) != unsignedDrive }

// CustodySealer checks the custody and audit logs' signatures, and the
// seals of entries written before they were signed.
func (k *Key) CustodySealer() chain.Sealer { return k.LogKeys() }

// LogKeys signs the custody and audit logs with the signing key; entries
// written before that were sealed with an HMAC key derived from the box
// key, which whoever holds /perm could recompute, so those are checked
// against it only on the box.
func (k *Key) LogKeys() chain.Keys {
	keys := chain.Keys{Legacy: chain.HMACSealer(k.custody)}
	if k.Signer != nil {
		keys.Signer, keys.Public = k.Signer, k.Signer.Public()
	}
	return keys
}

// openRepo opens the repository on the drive in the box, checking what it
// reads against this box's own signing key.
func (a *Appliance) openRepo(b *inBox) (*archive.Repo, error) {
	repo, err := archive.Open(a.repoPath(b))
	if err != nil {
		return nil, err
	}
	repo.Trust(a.key.Signer.Public())
	return repo, nil
}
