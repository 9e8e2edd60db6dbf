package main

import (
	"encoding/json"
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
