package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeriveConfig(t *testing.T) {
	root := moduleRoot(t)
	configJSON, err := os.ReadFile(filepath.Join(root, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := parseInstance(configJSON)
	if err != nil {
		t.Fatal(err)
	}
	s, err := readSettings(filepath.Join(root, "gokr-packer.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pi", "amd64"} {
		t.Run(name, func(t *testing.T) {
			target := s.Targets[name]
			b, err := deriveConfig(configJSON, target, "s3cret")
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseInstance(b)
			if err != nil {
				t.Fatalf("derived config: %v", err)
			}
			if got.Update == nil || got.Update.HTTPPassword != "s3cret" {
				t.Errorf("got Update %+v; want HTTPPassword s3cret", got.Update)
			}
			fields := map[string]string{
				"KernelPackage":   deref(got.KernelPackage),
				"FirmwarePackage": deref(got.FirmwarePackage),
				"EEPROMPackage":   deref(got.EEPROMPackage),
				"SerialConsole":   got.SerialConsole,
			}
			want := map[string]string{
				"KernelPackage":   deref(base.KernelPackage),
				"FirmwarePackage": deref(base.FirmwarePackage),
				"EEPROMPackage":   deref(base.EEPROMPackage),
				"SerialConsole":   base.SerialConsole,
			}
			for f, v := range target.Overrides {
				if listFields[f] {
					if g := strings.Join(got.KernelExtraArgs, " "); f != "KernelExtraArgs" || g != v {
						t.Errorf("got %s %q; want %q", f, g, v)
					}
					continue
				}
				want[f] = v
			}
			for f := range want {
				if fields[f] != want[f] {
					t.Errorf("got %s %q; want %q", f, fields[f], want[f])
				}
			}
			if strings.Join(got.Packages, " ") != strings.Join(base.Packages, " ") ||
				len(got.PackageConfig) != len(base.PackageConfig) {
				t.Errorf("got packages %v %v; want config.json's %v %v", got.Packages, got.PackageConfig, base.Packages, base.PackageConfig)
			}
		})
	}
	if s.Targets["amd64"].Overrides["FirmwarePackage"] != "" {
		t.Errorf("the amd64 target must not carry the Pi firmware")
	}
}

func deref(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}

func TestUpdatePassword(t *testing.T) {
	noEnv := func(string) string { return "" }
	t.Run("environment wins", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, passwordFile), []byte("fromfile\n"), 0o600)
		pw, src, err := updatePassword(dir, func(k string) string {
			if k == passwordEnv {
				return "fromenv"
			}
			return ""
		})
		if err != nil || pw != "fromenv" || src != "$"+passwordEnv {
			t.Errorf("got %q from %q, %v; want fromenv from $%s", pw, src, err, passwordEnv)
		}
	})
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, passwordFile), []byte("fromfile\n"), 0o600)
		pw, _, err := updatePassword(dir, noEnv)
		if err != nil || pw != "fromfile" {
			t.Errorf("got %q, %v; want fromfile", pw, err)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, passwordFile), []byte("\n"), 0o600)
		if pw, _, err := updatePassword(dir, noEnv); err == nil {
			t.Errorf("got %q; want an error for an empty %s", pw, passwordFile)
		}
	})
	t.Run("generated once", func(t *testing.T) {
		dir := t.TempDir()
		pw1, _, err := updatePassword(dir, noEnv)
		if err != nil || len(pw1) < 20 {
			t.Fatalf("got %q, %v; want a new password of 20+ characters", pw1, err)
		}
		fi, err := os.Stat(filepath.Join(dir, passwordFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("got %v, %v; want %s with mode 0600", fi, err, passwordFile)
		}
		pw2, _, err := updatePassword(dir, noEnv)
		if err != nil || pw2 != pw1 {
			t.Errorf("second call got %q, %v; want the stored %q", pw2, err, pw1)
		}
	})
}

func TestDeriveConfigKeepsUpdateFields(t *testing.T) {
	in := []byte(`{"Hostname":"h","Update":{"HTTPPort":"8080"},"Packages":[]}`)
	b, err := deriveConfig(in, &Target{Overrides: map[string]string{"FirmwarePackage": ""}}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	upd, _ := got["Update"].(map[string]any)
	if upd["HTTPPort"] != "8080" || upd["HTTPPassword"] != "pw" || got["FirmwarePackage"] != "" {
		t.Errorf("got %s; want Update.HTTPPort 8080 kept, HTTPPassword pw, FirmwarePackage \"\"", b)
	}
}
