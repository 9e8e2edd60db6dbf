package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pgLockFile lists the Debian packages the image's PostgreSQL comes from,
// pinned by version and SHA-256 (written by .ci/pgpin).
const pgLockFile = "cmd/clinicimage/postgres.lock"

// debPin is one line of the lock: MAJOR ARCH PACKAGE VERSION SHA256 URL.
type debPin struct {
	Major                          int
	Arch, Package, Version, SHA256 string
	URL                            string
}

// readPins reads the lock's lines for one architecture (a Debian name:
// amd64, arm64), grouped by major version.
func readPins(r io.Reader, arch string) (map[int][]debPin, error) {
	out := map[int][]debPin{}
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		major, err := strconv.Atoi(f[0])
		if len(f) != 6 || err != nil || len(f[4]) != 64 || !strings.HasPrefix(f[5], "http://deb.debian.org/") || !strings.HasSuffix(f[5], ".deb") {
			return nil, fmt.Errorf("%s:%d: want MAJOR ARCH PACKAGE VERSION SHA256 URL (a .deb on deb.debian.org); run .ci/pgpin again", pgLockFile, n)
		}
		if f[1] == arch {
			out[major] = append(out[major], debPin{Major: major, Arch: f[1], Package: f[2], Version: f[3], SHA256: f[4], URL: f[5]})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", pgLockFile, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s pins no PostgreSQL for %s; run .ci/pgpin", pgLockFile, arch)
	}
	return out, nil
}

// fetchDeb returns the path of the pinned package in cache, downloading it
// when missing. A file whose SHA-256 differs from the pin is never used: a
// damaged cache entry is fetched again, a wrong download is an error.
func fetchDeb(ctx context.Context, client *http.Client, cache string, p debPin) (string, error) {
	path := filepath.Join(cache, p.SHA256+".deb")
	if sum, err := fileSHA256(path); err == nil && sum == p.SHA256 {
		return path, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", p.Package, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s: %s from %s; if Debian moved it (a newer security update), run .ci/pgpin", p.Package, resp.Status, p.URL)
	}
	tmp, err := os.CreateTemp(cache, ".fetch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	// Debian's largest package here (ICU's data) is about 10 MB.
	_, err = io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, 256<<20))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", p.Package, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return "", fmt.Errorf("fetch %s %s: SHA-256 %s, pinned %s; not used", p.Package, p.Version, got, p.SHA256)
	}
	// No fsync: the cache is checked against the pin on every use, so a
	// file a crash left short is fetched again.
	return path, os.Rename(tmp.Name(), path)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
