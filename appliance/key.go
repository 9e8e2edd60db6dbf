package appliance

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/rotation"
)

// Key is the box's own secret: an age identity kept on the box's persistent
// storage, never on a drive. From it the box derives the key that signs
// drive identities and the key that seals the custody log, so one file
// (backed up on paper as the practice's recovery key, or not) is all there
// is to guard.
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
		if err := writeFileAtomic(path, []byte(id.String()+"\n"), 0o600); err != nil {
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

// SignDrive signs a drive ID for its identity file.
func (k *Key) SignDrive(id rotation.DriveID) []byte { return ed25519.Sign(k.sign, []byte(id)) }

// VerifyDrive checks a drive ID's signature.
func (k *Key) VerifyDrive(id rotation.DriveID, sig []byte) bool {
	return ed25519.Verify(k.sign.Public().(ed25519.PublicKey), []byte(id), sig)
}

// CustodySealer checks the custody and audit logs' signatures, and the
// seals of entries written before they were signed.
func (k *Key) CustodySealer() rotation.Sealer { return k.LogKeys() }

// LogKeys signs the custody and audit logs with the signing key; entries
// written before that were sealed with an HMAC key derived from the box
// key, which whoever holds /perm could recompute, so those are checked
// against it only on the box.
func (k *Key) LogKeys() rotation.Keys {
	keys := rotation.Keys{Legacy: rotation.HMACSealer(k.custody)}
	if k.Signer != nil {
		keys.Signer, keys.Public = k.Signer, k.Signer.Public()
	}
	return keys
}

// writeFileAtomic writes a file durably: temp file, fsync, rename, fsync
// of the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
