package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/durable"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

// A signed repository is read only against a box signing key the operator
// trusts: given with --box-key, or recorded the first time clinicctl read a
// repository of that database system (and said so loudly). The record is a
// small JSON file: $CLINICBOX_TRUST_FILE, or trusted-boxes.json in the
// user's configuration directory.

// boxKeyFlag adds --box-key to fs.
func boxKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("box-key", "", "the box's public signing key (clinicbox-sign1-..., printed beside the recovery key and on the box's page); default: the key recorded at first use")
}

// trustFile is where trusted keys are recorded.
func trustFile() (string, error) {
	if p := os.Getenv("CLINICBOX_TRUST_FILE"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory to record the box's signing key in (%v); pass --box-key", err)
	}
	return filepath.Join(dir, "clinicbox", "trusted-boxes.json"), nil
}

// trusted maps a database system ID to the box signing key trusted for it.
type trusted map[string]string

func loadTrusted(path string) (trusted, error) {
	t := trusted{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&t); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v); fix or remove it, and pass --box-key", path, err)
	}
	return t, nil
}

// openTrusted opens a repository for reading, checked against the box key
// given, recorded, or (first use) named by the repository itself.
func openTrusted(dir, boxKey string, stderr io.Writer) (*archive.Repo, error) {
	repo, err := archive.Open(dir)
	if err != nil || !repo.Signed() {
		return repo, err
	}
	if boxKey != "" {
		p, err := signer.ParsePublic(boxKey)
		if err != nil {
			return nil, fmt.Errorf("--box-key: %w", err)
		}
		repo.Trust(p)
		return repo, nil
	}
	path, err := trustFile()
	if err != nil {
		return nil, err
	}
	t, err := loadTrusted(path)
	if err != nil {
		return nil, err
	}
	sys := repo.Info.SystemID
	if k, ok := t[sys]; ok {
		p, err := signer.ParsePublic(k)
		if err != nil {
			return nil, fmt.Errorf("%s: database system %s: %w", path, sys, err)
		}
		repo.Trust(p)
		return repo, nil
	}
	if err := repo.TrustRecorded(); err != nil {
		return nil, err
	}
	t[sys] = repo.Info.Signer
	b, _ := json.MarshalIndent(t, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := durable.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "FIRST USE: trusting box signing key %s for database system %s, as the repository names it.\n"+
		"Compare it with the key on the recovery sheet or the box's page now; if they differ, stop and call IT. Recorded in %s.\n", repo.Info.Signer, sys, path)
	return repo, nil
}

// signKeyFlag adds --sign-key to fs.
func signKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("sign-key", "", "the signing key that signs what is written (the box's box.sign, or one made by 'clinicctl keygen --sign-out FILE'); default: this machine's own, made at first use")
}

// loadSignKey reads the signing key at path; with no path, this machine's
// own ($CLINICBOX_SIGN_KEY, or sign.key in the user's configuration
// directory), made at first use and announced.
func loadSignKey(path string, stderr io.Writer) (*signer.Key, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("--sign-key %s: %w; make one with 'clinicctl keygen --out KEY --sign-out SIGNKEY'", path, err)
		}
		return signer.LoadOrCreate(path)
	}
	if path = os.Getenv("CLINICBOX_SIGN_KEY"); path == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("no configuration directory for this machine's signing key (%v); pass --sign-key", err)
		}
		path = filepath.Join(dir, "clinicbox", "sign.key")
	}
	_, statErr := os.Stat(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	k, err := signer.LoadOrCreate(path)
	if err == nil && errors.Is(statErr, os.ErrNotExist) {
		fmt.Fprintf(stderr, "Created this machine's signing key in %s; its public key, which restores check backups against, is\n  %s\nKeep it with the recovery key.\n", path, k.Public())
	}
	return k, err
}
