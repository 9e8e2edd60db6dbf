package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	out := fs.String("out", "", "file to write the identity (secret key) to; it must not exist")
	signOut := fs.String("sign-out", "", "also write a signing key (for 'backup' and 'stream' on this machine) to this file; it must not exist")
	if err := parse(fs, args, "out"); err != nil {
		return err
	}
	if *signOut != "" {
		if _, err := os.Stat(*signOut); err == nil {
			return fmt.Errorf("keygen: %s already exists; refusing to overwrite a signing key", *signOut)
		}
		k, err := signer.LoadOrCreate(*signOut)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		fmt.Fprintln(stderr, "signing key:", k.Public(), "(keep it with the recovery key; restores check backups against it)")
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("keygen: %s already exists; refusing to overwrite a key (backups encrypted to it would become unreadable)", *out)
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(f, "# clinicbox key, created %s\n# public key: %s\n# Keep this file secret and keep a copy offline; never store it on a backup drive.\n%s\n",
		time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, id.Recipient())
	return nil
}
