package appliance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/drive"
	"github.com/clinicbox/clinicbox/appliance/drive/drivetest"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

// What a stranger's drive can hold where the identity file belongs: the
// box reads only a small ordinary file, never blocks on a FIFO, never reads
// a device through a link, and refuses an identity no clinicbox writes, with
// the reason in words.
func TestReadIdentityFromHostileDrive(t *testing.T) {
	doc := func(id string) []byte {
		b, _ := json.Marshal(identityDoc{ID: rotation.DriveID(id), Signature: []byte("sig")})
		return b
	}
	tests := []struct {
		name   string
		make   func(p string) error
		wantID rotation.DriveID
		words  string // in the error; empty: no error
	}{
		{"enrolled", func(p string) error { return os.WriteFile(p, doc("drive-0a1b2c3d4e5f"), 0o644) }, "drive-0a1b2c3d4e5f", ""},
		{"none", func(p string) error { return nil }, "", ""},
		{"damaged", func(p string) error { return os.WriteFile(p, []byte("{"), 0o644) }, "", ""},
		{"FIFO", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "", "not an ordinary file"},
		{"symlink to a device", func(p string) error { return os.Symlink("/dev/zero", p) }, "", "not an ordinary file"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, "", "not an ordinary file"},
		{"huge file", func(p string) error { return os.WriteFile(p, bytes.Repeat([]byte(" "), 64<<20), 0o644) }, "", "larger than any clinicbox writes"},
		{"2 MiB drive ID", func(p string) error { return os.WriteFile(p, doc(strings.Repeat("A", 2<<20)), 0o644) }, "", "larger than any clinicbox writes"},
		{"10 KiB drive ID", func(p string) error { return os.WriteFile(p, doc(strings.Repeat("A", 10<<10)), 0o644) }, "", "drive ID is 10240 bytes"},
		{"drive ID with a line break", func(p string) error { return os.WriteFile(p, doc("A\nB"), 0o644) }, "", "drive ID holds the character '\\n'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tt.make(filepath.Join(dir, identityFile)); err != nil {
				t.Fatal(err)
			}
			id, err := readIdentity(context.Background(), dir, drive.Info{FSUUID: "fs-1", Serial: "SN-1"})
			if tt.words == "" && (err != nil || id.ID != tt.wantID || id.FSUUID != "fs-1") {
				t.Fatalf("got %q %v; want ID %q", id.ID, err, tt.wantID)
			}
			if tt.words != "" && (err == nil || !strings.Contains(err.Error(), tt.words) || id.ID != "") {
				t.Fatalf("got %.40q %v; want no identity and an error saying %q", id.ID, err, tt.words)
			}
		})
	}
}

// A strange serial or filesystem UUID from the hardware is refused as
// well: it would be recorded like a drive ID.
func TestReadIdentityRefusesStrangeHardwareIDs(t *testing.T) {
	for _, info := range []drive.Info{{Serial: strings.Repeat("S", 4000)}, {Serial: "SN\x00"}, {FSUUID: "fs\n1"}} {
		if _, err := readIdentity(context.Background(), t.TempDir(), info); err == nil {
			t.Errorf("readIdentity with serial %.40q, UUID %q: got nil; want an error", info.Serial, info.FSUUID)
		}
	}
}

// A drive identity is signed with the box's signing key over the ID, the
// filesystem UUID and the serial together: the identity file copied onto
// another drive does not verify. Drives enrolled before carry the older
// signature over the ID alone, which is still accepted, as such.
func TestDriveSignature(t *testing.T) {
	k, err := LoadKey(filepath.Join(t.TempDir(), "box.key"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadKey(filepath.Join(t.TempDir(), "box.key"))
	if err != nil {
		t.Fatal(err)
	}
	id := rotation.Identity{ID: "drive-0a1b2c3d4e5f", FSUUID: "fs-1", Serial: "SN-1"}
	signed := id
	signed.Signature = k.SignDrive(id)
	old := id
	old.Signature = ed25519.Sign(k.sign, []byte(id.ID))
	with := func(id rotation.Identity, f func(*rotation.Identity)) rotation.Identity { f(&id); return id }
	tests := []struct {
		name string
		id   rotation.Identity
		want driveSigning
	}{
		{"signed", signed, signedDrive},
		{"copied to another filesystem", with(signed, func(i *rotation.Identity) { i.FSUUID = "fs-2" }), unsignedDrive},
		{"copied to another stick", with(signed, func(i *rotation.Identity) { i.Serial = "SN-2" }), unsignedDrive},
		{"another ID", with(signed, func(i *rotation.Identity) { i.ID = "drive-ffffffffffff" }), unsignedDrive},
		{"signed the old way", old, oldSignedDrive},
		{"the old way, on another stick", with(old, func(i *rotation.Identity) { i.Serial = "SN-2" }), oldSignedDrive},
		{"another box", with(id, func(i *rotation.Identity) { i.Signature = other.SignDrive(id) }), unsignedDrive},
		{"another box, the old way", with(id, func(i *rotation.Identity) { i.Signature = ed25519.Sign(other.sign, []byte(id.ID)) }), unsignedDrive},
		{"unsigned", id, unsignedDrive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := k.driveSigning(tt.id); got != tt.want {
				t.Fatalf("got %d; want %d", got, tt.want)
			}
			if got := k.VerifyDrive(tt.id); got != (tt.want != unsignedDrive) {
				t.Fatalf("VerifyDrive: got %v; want %v", got, tt.want != unsignedDrive)
			}
		})
	}
}

// A drive enrolled before identities covered the filesystem and serial is
// accepted, the events say so, and its identity file is signed again with
// the box's signing key the next time the box writes to it.
func TestOldSignedDriveIsSignedAgain(t *testing.T) {
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")))
	gen := r.enroll("blue")
	if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	if err := r.sim.Unplug("blue"); err != nil {
		t.Fatal(err)
	}
	r.wait("drive out", func(st status.Status) bool { return st.InBox == nil })

	p := filepath.Join(r.sim.Dir, "blue", identityFile)
	doc := readDoc(t, p)
	doc.Signature = ed25519.Sign(r.a.key.sign, []byte(doc.ID))
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r.plugAndBackUp("blue", gen)
	var said []string
	for _, ev := range r.a.Status().Events {
		if strings.Contains(ev.Message, "enrolled before drive identities") || strings.Contains(ev.Message, "is now signed with the box's signing key") {
			said = append(said, ev.Message)
		}
	}
	if len(said) != 2 {
		t.Errorf("got events %q; want one saying the drive was signed the old way and one that it is signed again", said)
	}
	info := drivetest.Info("blue")
	doc = readDoc(t, p)
	got := r.a.key.driveSigning(rotation.Identity{ID: doc.ID, Signature: doc.Signature, FSUUID: info.FSUUID, Serial: info.Serial})
	if got != signedDrive {
		t.Fatalf("identity file after the backup: got signing %d; want %d (the box's signing key)", got, signedDrive)
	}
}

func readDoc(t *testing.T, p string) identityDoc {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc identityDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}
