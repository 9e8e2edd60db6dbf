package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
)

// hostSide is what the host checks a drive with, as the practice would
// after taking it out of the box: the clinicctl command line and the
// practice's recovery key (clinicctl keygen). They live in a directory the
// PostgreSQL user can read, because a restored server runs clinicctl
// wal-fetch as that user.
type hostSide struct {
	dir       string
	clinicctl string
	identity  string
	recipient string
	// uid and gid are the server's user when this runs as root; -1
	// otherwise.
	uid, gid int
}

// newHostSide builds clinicctl from the module at root and makes the
// recovery key.
func newHostSide(ctx context.Context, root string) (*hostSide, error) {
	uid, gid, err := pgbin.ServerUser()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "clinicbox-smoke-host-")
	if err != nil {
		return nil, err
	}
	h := &hostSide{dir: dir, clinicctl: filepath.Join(dir, "clinicctl"), identity: filepath.Join(dir, "recovery.key"), uid: uid, gid: gid}
	if err := os.Chmod(dir, 0o755); err != nil {
		h.Remove()
		return nil, err
	}
	if err := goCommand(ctx, root, nil, nil, os.Stderr, "build", "-o", h.clinicctl, "./cmd/clinicctl"); err != nil {
		h.Remove()
		return nil, fmt.Errorf("build clinicctl: %w", err)
	}
	out, err := h.run(ctx, "keygen", "--out", h.identity)
	if err != nil {
		h.Remove()
		return nil, err
	}
	h.recipient = strings.TrimSpace(out)
	if err := h.chown(h.identity); err != nil {
		h.Remove()
		return nil, err
	}
	return h, nil
}

// Remove deletes the directory and all that was copied or restored there.
func (h *hostSide) Remove() { os.RemoveAll(h.dir) }

// run runs clinicctl and returns its standard output; a failure carries
// both outputs.
func (h *hostSide) run(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, h.clinicctl, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("clinicctl %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// copyRepo copies the repository (clinicbox/) off the drive's disk image
// into the directory name and returns the copy's path. The copy, not the
// image, is what clinicctl reads: verify records its result in the
// repository, and the image stays as the box left it.
func (h *hostSide) copyRepo(ctx context.Context, image, name string) (string, error) {
	dest := filepath.Join(h.dir, name)
	if err := os.Mkdir(dest, 0o755); err != nil {
		return "", err
	}
	if err := ext4Dump(ctx, image, "/"+repoDirOnDrive, dest); err != nil {
		return "", err
	}
	repo := filepath.Join(dest, repoDirOnDrive)
	return repo, h.chown(repo)
}

// chown gives path and everything below it to the server's user.
func (h *hostSide) chown(path string) error {
	if h.uid < 0 {
		return nil
	}
	return filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, h.uid, h.gid)
	})
}

// serverDir makes a directory the server's user owns, for its socket and
// log.
func (h *hostSide) serverDir(name string) (string, error) {
	d := filepath.Join(h.dir, name)
	if err := os.Mkdir(d, 0o755); err != nil {
		return "", err
	}
	return d, h.chown(d)
}

// The names an enrolled drive carries at its root (appliance/drive.go).
const (
	repoDirOnDrive      = "clinicbox"
	identityFileOnDrive = "clinicbox-drive.json"
)
