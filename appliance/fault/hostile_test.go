package fault

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/drivefile"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// Malformed settings are refused with an error that names the problem.
func TestMalformedSettings(t *testing.T) {
	huge := `{"database": {"url": "postgres://clinicbox@db:5432/postgres"}, "slot": "` + strings.Repeat("x", 8<<20) + `"}`
	tests := []struct{ name, json, words string }{
		{"truncated", `{"database": `, "ends in the middle"},
		{"empty", ``, "is empty"},
		{"unknown field", `{"databse": {"url": "postgres://a@b/c"}}`, "field"},
		{"no database", `{}`, "database.url"},
		{"not a postgres URL", `{"database": {"url": "http://db"}}`, "database.url"},
		{"bad recipient", `{"database": {"url": "postgres://a@db/postgres"}, "recipients": ["age1nope"]}`, "recipients"},
		{"wrong type", `{"database": {"url": 5}}`, "settings"},
		{"huge value", huge, "settings"},
		{"binary garbage", "\x00\xff\xfe{", "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTry(t, "malformed settings file")
			_, err := appliance.LoadSettings(strings.NewReader(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.words) {
				t.Fatalf("got %v; want an error mentioning %q", err, tt.words)
			}
			tr.Outcome = "refused with an error naming the field or position and the fix"
		})
	}
}

// A custody log edited outside the box is caught at the first bad entry.
func TestForgedCustodyEntries(t *testing.T) {
	sealer := chain.HMACSealer([]byte("box key"))
	sample := func(t *testing.T) []rotation.Entry {
		log, err := rotation.NewLog(nil, sealer)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, time.March, 2, 8, 5, 0, 0, time.UTC)
		for i, ev := range []rotation.EventKind{rotation.Remove, rotation.Insert, rotation.Remove, rotation.Insert} {
			log.Append(rotation.Entry{Time: start.Add(time.Duration(i) * time.Hour), Drive: "A", Generation: "Son",
				Event: string(ev), Who: "Maria", Decision: rotation.Accepted})
		}
		return log.Entries()
	}
	forger, err := rotation.NewLog(nil, chain.HMACSealer([]byte("another key")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tamper func([]rotation.Entry) []rotation.Entry
		index  int
	}{
		{"who edited", func(e []rotation.Entry) []rotation.Entry { e[2].Who = "Sam"; return e }, 2},
		{"time moved", func(e []rotation.Entry) []rotation.Entry { e[1].Time = e[1].Time.Add(-time.Hour); return e }, 1},
		{"entry removed", func(e []rotation.Entry) []rotation.Entry { return slices.Delete(e, 1, 2) }, 1},
		{"entries swapped", func(e []rotation.Entry) []rotation.Entry { e[2], e[3] = e[3], e[2]; return e }, 2},
		{"entry replayed", func(e []rotation.Entry) []rotation.Entry { return append(e, e[1]) }, 4},
		{"entry forged with another key", func(e []rotation.Entry) []rotation.Entry {
			forger.Append(rotation.Entry{Time: e[3].Time, Drive: "A", Generation: "Son", Event: string(rotation.Remove), Who: "Sam", Decision: rotation.Accepted})
			f := forger.Entries()[len(forger.Entries())-1]
			f.Seq, f.Prev = int64(len(e)+1), e[len(e)-1].Hash
			return append(e, f)
		}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTry(t, "forged or edited custody-log entries")
			err := rotation.Verify(tt.tamper(sample(t)), sealer)
			var ce *chain.Error
			if !errors.As(err, &ce) || ce.Index != tt.index {
				t.Fatalf("got %v; want a chain error at entry %d", err, tt.index)
			}
			tr.Outcome = "rotation.Verify names the first bad entry and why"
		})
	}
}

// A drive carrying another box's identity is refused and never written.
func TestDriveFromAnotherBox(t *testing.T) {
	tr := newTry(t, "drive carrying another box's identity")
	p := &rotation.Policy{Verify: func(id rotation.Identity) bool { return string(id.Signature) == "ours:"+string(id.ID) }}
	_, d := p.Decide(rotation.State{}, rotation.Event{Kind: rotation.Insert,
		Identity: rotation.Identity{ID: "X", Signature: []byte("theirs:X"), FSUUID: "fs-x"}}, time.Now())
	if d.Kind != rotation.ForeignDrive || d.Write {
		t.Fatalf("got %s write=%v; want a foreign drive, not written", d.Kind, d.Write)
	}
	tr.Outcome = "rotation says ForeignDrive, nothing written: " + d.Reasons[0]
}

// Malformed and huge uevents are skipped; the watcher keeps working and
// reports the next real drive.
func TestHostileUEvents(t *testing.T) {
	tr := newTry(t, "malformed or huge uevents")
	sys := usbtest.CopyTree(t, "../../drivers/usb/testdata/sys")
	away := filepath.Join(sys, "class/away")
	os.MkdirAll(away, 0o755)
	for _, n := range []string{"sdb", "sdb1"} {
		if err := os.Rename(filepath.Join(sys, "class/block", n), filepath.Join(away, n)); err != nil {
			t.Fatal(err)
		}
	}
	mountinfo := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(mountinfo, []byte("22 1 0:21 / /proc rw,nosuid - proc proc rw\n"), 0o644)
	src := usbtest.NewSource()
	w, err := usb.NewWatcher(usb.Config{Sysfs: sys, MountInfo: mountinfo, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := make(chan usb.Event, 64), make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
	// The start-up scan reports the six other devices of the recorded tree
	// first; the drive is plugged in after it.
	for range 6 {
		select {
		case <-out:
		case err := <-done:
			t.Fatalf("watcher ended: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no start-up scan")
		}
	}
	for _, n := range []string{"sdb", "sdb1"} {
		os.Rename(filepath.Join(away, n), filepath.Join(sys, "class/block", n))
	}
	hostile := [][]byte{nil, []byte("garbage"), make([]byte, usb.MaxMessage+10), []byte("add@/x\x00ACTION=add\x00"),
		[]byte("add@/devices/virtual/block/sdb\x00ACTION=add\x00DEVPATH=/devices/../../../etc\x00SUBSYSTEM=block\x00DEVNAME=../../etc/passwd\x00"),
		[]byte("add@/a\x00" + strings.Repeat("K=V\x00", 20000)), []byte(strings.Repeat("\x00", 4096))}
	go func() {
		for _, m := range hostile {
			src.Send(m)
		}
		for _, m := range usbtest.MustRecording(t, "../../drivers/usb/testdata/usb-stick-add.uevents") {
			src.Send(m)
		}
	}()
	for {
		select {
		case ev := <-out:
			if ev.Action == "add" && ev.Name == "sdb" {
				tr.Outcome = "skipped; the watcher kept running and reported the next real drive"
				return
			}
			if ev.Action == "add" && ev.Name != "sdb1" {
				t.Fatalf("got %s from hostile input; want it skipped", ev)
			}
		case err := <-done:
			t.Fatalf("watcher ended: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no event for the real drive after hostile input")
		}
	}
}

// Files on a stranger's drive where the box expects a small file: a FIFO,
// a link to a device, a huge file, a directory. Each is refused at once with
// its reason; nothing blocks and nothing is read without limit.
func TestHostileDriveFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "huge"), make([]byte, 8<<20), 0o644)
	tests := []struct {
		name string
		make func(p string) error
		want error
	}{
		{"FIFO", func(p string) error { return syscall.Mkfifo(p, 0o644) }, drivefile.ErrNotRegular},
		{"symlink to a device", func(p string) error { return os.Symlink("/dev/zero", p) }, drivefile.ErrNotRegular},
		{"symlink to a file of the box", func(p string) error { return os.Symlink("/etc/hostname", p) }, drivefile.ErrNotRegular},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, drivefile.ErrNotRegular},
		{"huge file", func(p string) error { return os.Link(filepath.Join(dir, "huge"), p) }, drivefile.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTry(t, "drive file that is a "+tt.name)
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := tt.make(p); err != nil {
				t.Fatal(err)
			}
			b, err := drivefile.ReadFile(context.Background(), p, 64<<10)
			if !errors.Is(err, tt.want) || b != nil {
				t.Fatalf("got %d bytes, %v; want %v", len(b), err, tt.want)
			}
			tr.Outcome = "refused at once: " + tt.want.Error()
		})
	}
}

// A foreign drive whose ext4 journal needs recovery is identified and
// mounted read-only by the box without a byte of it changing.
func TestForeignDriveWithDirtyJournal(t *testing.T) {
	tr := newTry(t, "foreign drive with a dirty ext4 journal")
	img := usbtest.DirtyImage(t)
	before := fileSum(t, img)
	m := usbtest.Mount(t, usbtest.AttachLoop(t, img), usb.MountReadOnly)
	if _, err := os.ReadDir(m.Dir); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fileSum(t, img); got != before {
		t.Fatalf("image SHA-256: got %x; want %x (unchanged)", got, before)
	}
	tr.Outcome = "mounted with the device read-only and noload: image SHA-256 unchanged"
}

// An identity file copied from an enrolled drive onto another stick does
// not verify: the signature covers the filesystem UUID and serial too.
func TestCopiedIdentityFile(t *testing.T) {
	tr := newTry(t, "identity file copied onto another stick")
	k, err := appliance.LoadKey(filepath.Join(t.TempDir(), "box.key"))
	if err != nil {
		t.Fatal(err)
	}
	id := rotation.Identity{ID: "drive-0a1b2c3d4e5f", FSUUID: "3f1c2a5e-8b0d-4c7e-9a61-2d5f0e4b7c19", Serial: "4C530001230815117283"}
	id.Signature = k.SignDrive(id)
	copied := id
	copied.FSUUID, copied.Serial = "6a1d2c3e-4b5f-4c7e-9a61-2d5f0e4b7c19", "AA00000000001234"
	if !k.VerifyDrive(id) || k.VerifyDrive(copied) {
		t.Fatalf("verify original %v, copy %v; want true, false", k.VerifyDrive(id), k.VerifyDrive(copied))
	}
	p := &rotation.Policy{Verify: k.VerifyDrive}
	_, d := p.Decide(rotation.State{}, rotation.Event{Kind: rotation.Insert, Identity: copied}, time.Now())
	if d.Kind != rotation.ForeignDrive || d.Write || d.Enroll {
		t.Fatalf("got %s write=%v enroll=%v; want a foreign drive, not written or offered", d.Kind, d.Write, d.Enroll)
	}
	tr.Outcome = "signature fails; rotation says ForeignDrive, nothing written"
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
