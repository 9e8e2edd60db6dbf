package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// The drill's files land in the box package's config, next to what
// config.json already gives it, and never silently replace a file.
func TestAddExtraFiles(t *testing.T) {
	cfg := []byte(`{"PackageConfig": {"` + boxPackage + `": {"WaitForClock": true, "ExtraFileContents": {"/etc/x": "y"}}}}`)
	out, err := addExtraFiles(cfg, map[string]string{"/bin/sh": "/w/sh"}, map[string]string{"/etc/passwd": etcPasswd})
	if err != nil {
		t.Fatal(err)
	}
	var got instance
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	pc := got.PackageConfig[boxPackage]
	if !pc.WaitForClock || pc.ExtraFilePaths["/bin/sh"] != "/w/sh" || pc.ExtraFileContents["/etc/x"] != "y" || !strings.Contains(pc.ExtraFileContents["/etc/passwd"], "postgres:x:70:70:") {
		t.Errorf("got %+v; want WaitForClock kept, /bin/sh, /etc/x and /etc/passwd with postgres", pc)
	}
	if _, err := addExtraFiles(cfg, nil, map[string]string{"/etc/x": "z"}); err == nil {
		t.Error("a file config.json already gives: got no error; want one")
	}
}

// A lock line that is not exactly a pinned .deb from Debian's mirror is
// refused, with what to do.
func TestReadPinsRefusesOddLines(t *testing.T) {
	good := "15 amd64 libc6 2.36 " + strings.Repeat("a", 64) + " http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.36_amd64.deb\n"
	pins, err := readPins(strings.NewReader("# comment\n"+good), "amd64")
	if err != nil || len(pins[15]) != 1 || pins[15][0].Package != "libc6" {
		t.Fatalf("got %v, %v; want libc6 for 15", pins, err)
	}
	for _, bad := range []string{
		"15 amd64 libc6 2.36 abc http://deb.debian.org/debian/x.deb",
		"15 amd64 libc6 2.36 " + strings.Repeat("a", 64) + " http://evil.example/x.deb",
		"15 amd64 libc6 2.36 " + strings.Repeat("a", 64),
		"x amd64 libc6 2.36 " + strings.Repeat("a", 64) + " http://deb.debian.org/debian/x.deb",
	} {
		if _, err := readPins(strings.NewReader(good+bad+"\n"), "amd64"); err == nil || !strings.Contains(err.Error(), "pgpin") {
			t.Errorf("%q: got %v; want an error that says to run .ci/pgpin", bad, err)
		}
	}
	if _, err := readPins(strings.NewReader(good), "arm64"); err == nil {
		t.Error("no pins for arm64: got no error; want one")
	}
}

// A download whose SHA-256 differs from the pin is never kept, and a cached
// package damaged since is fetched again.
func TestFetchDebChecksThePin(t *testing.T) {
	body := "the package"
	sum := sha256.Sum256([]byte(body))
	served := body + " changed"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, served) }))
	defer srv.Close()
	cache := t.TempDir()
	p := debPin{Package: "libc6", Version: "2.36", SHA256: hex.EncodeToString(sum[:]), URL: srv.URL + "/libc6.deb"}
	if _, err := fetchDeb(t.Context(), srv.Client(), cache, p); err == nil || !strings.Contains(err.Error(), "not used") {
		t.Fatalf("a download that is not the pinned package: got %v; want refused", err)
	}
	if left, _ := os.ReadDir(cache); len(left) != 0 {
		t.Fatalf("the cache holds %d files after a refused download; want none", len(left))
	}
	served = body
	path, err := fetchDeb(t.Context(), srv.Client(), cache, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fetchDeb(t.Context(), srv.Client(), cache, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != body {
		t.Errorf("the damaged cached package reads %q after fetching; want %q", got, body)
	}
}
