package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// pushUpdate installs the boot and root file systems of a gokrazy archive
// (monogok overwrite --gaf) on a running box through gokrazy's update
// protocol, as gokrazy's own updater does: the root file system to the
// inactive root partition and the boot file system, each checked by the
// SHA-256 the box computes of what it wrote; then the switch to the new
// root partition and a reboot, which stops the services (clinicbox
// flushes and unmounts on SIGTERM) first. /perm is not touched.
//
// Written here because monogok's own "update" is not implemented and the
// github.com/gokrazy/updater module is not served by the module proxy;
// the protocol is four HTTP requests, read from gokrazy's update.go.
func pushUpdate(ctx context.Context, hc *http.Client, base, password, gaf string, progress io.Writer) error {
	u := &updater{hc: hc, base: strings.TrimSuffix(base, "/"), password: password}
	features, err := u.request(ctx, "GET", "/update/features", nil, nil)
	if err != nil {
		return err
	}
	if !strings.Contains(string(features), "updatehash") {
		return fmt.Errorf("update: the box's gokrazy does not check what it writes (features %q); flash the image instead", features)
	}
	z, err := zip.OpenReader(gaf)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer z.Close()
	for _, part := range []string{"root", "boot"} {
		n, err := u.put(ctx, z, part)
		if err != nil {
			return err
		}
		fmt.Fprintf(progress, "update: wrote the %s file system (%.1f MB), checked\n", part, float64(n)/1e6)
	}
	if _, err := u.request(ctx, "POST", "/update/switch", nil, nil); err != nil {
		return err
	}
	if _, err := u.request(ctx, "POST", "/reboot", nil, nil); err != nil {
		return err
	}
	fmt.Fprintln(progress, "update: switched to the new root file system; rebooting")
	return nil
}

type updater struct {
	hc       *http.Client
	base     string
	password string
}

// put streams the archive's PART.img to /update/PART and compares the
// box's SHA-256 of what it wrote with the archive's.
func (u *updater) put(ctx context.Context, z *zip.ReadCloser, part string) (int64, error) {
	f, err := z.Open(part + ".img")
	if err != nil {
		return 0, fmt.Errorf("update: the archive has no %s file system: %w", part, err)
	}
	defer f.Close()
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(f, h)}
	got, err := u.request(ctx, "PUT", "/update/"+part, cr, http.Header{"X-Gokrazy-Update-Hash": {"sha256"}})
	if err != nil {
		return cr.n, err
	}
	if want := hex.EncodeToString(h.Sum(nil)); string(bytes.TrimSpace(got)) != want {
		return cr.n, fmt.Errorf("update: the box wrote a %s file system with SHA-256 %.16s…, not %.16s…: not switching to it; try again", part, got, want)
	}
	return cr.n, nil
}

func (u *updater) request(ctx context.Context, method, path string, body io.Reader, hdr http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.SetBasicAuth("gokrazy", u.password)
	resp, err := u.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("update: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, errors.New("update: the box refused the update password: use the one its image was built with ($CLINICBOX_UPDATE_PASSWORD or .update-password)")
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("update: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	case err != nil:
		return nil, fmt.Errorf("update: %s %s: %w", method, path, err)
	}
	return b, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
