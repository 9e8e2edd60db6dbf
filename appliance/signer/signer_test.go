package signer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	k := FromSeed(make([]byte, 32))
	other := FromSeed([]byte(strings.Repeat("x", 32)))
	sig := k.Sign("wal-segment", []byte("content"))
	tests := []struct {
		name    string
		key     PublicKey
		purpose string
		msg     string
		sig     []byte
		want    error
	}{
		{"good", k.Public(), "wal-segment", "content", sig, nil},
		{"changed content", k.Public(), "wal-segment", "c0ntent", sig, ErrBadSignature},
		{"other purpose", k.Public(), "backup", "content", sig, ErrBadSignature},
		{"other key", other.Public(), "wal-segment", "content", sig, ErrBadSignature},
		{"unsigned", k.Public(), "wal-segment", "content", nil, ErrUnsigned},
		{"short signature", k.Public(), "wal-segment", "content", sig[:10], ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.key.Verify(tt.purpose, []byte(tt.msg), tt.sig); !errors.Is(err, tt.want) {
				t.Errorf("Verify: got %v; want %v", err, tt.want)
			}
		})
	}
}

func TestPublicText(t *testing.T) {
	k := FromSeed(make([]byte, 32))
	s := k.Public().String()
	p, err := ParsePublic(s)
	if err != nil || p != k.Public() {
		t.Fatalf("ParsePublic(%q) = %v, %v; want the key back", s, p, err)
	}
	if p, err := ParsePublic("  " + strings.ToUpper(s) + "\n"); err != nil || p != k.Public() {
		t.Errorf("ParsePublic of upper case with spaces: %v, %v; want the key back", p, err)
	}
	typo := []byte(s)
	if typo[len(PublicPrefix)+3] == 'a' {
		typo[len(PublicPrefix)+3] = 'b'
	} else {
		typo[len(PublicPrefix)+3] = 'a'
	}
	if _, err := ParsePublic(string(typo)); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Errorf("ParsePublic with a typo: %v; want an error that says typo", err)
	}
	for _, bad := range []string{"", "age1abc", PublicPrefix + "!!", PublicPrefix + "aaaa"} {
		if _, err := ParsePublic(bad); err == nil {
			t.Errorf("ParsePublic(%q) accepted it; want an error", bad)
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "box.sign")
	k1, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	k2, err := LoadOrCreate(path)
	if err != nil || k2.Public() != k1.Public() {
		t.Fatalf("second load: %v, %v; want the same key", k2, err)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := LoadOrCreate(path); err == nil {
		t.Error("a damaged key file was accepted; want an error")
	}
}
