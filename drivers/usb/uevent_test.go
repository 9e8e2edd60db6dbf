package usb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseUEvent(t *testing.T) {
	ok := "add@/devices/virtual/block/loop0\x00ACTION=add\x00DEVPATH=/devices/virtual/block/loop0\x00SUBSYSTEM=block\x00DEVTYPE=disk\x00SEQNUM=7\x00"
	tests := []struct {
		name    string
		msg     string
		wantErr bool
		key     string
		val     string
	}{
		{"kernel add", ok, false, "SUBSYSTEM", "block"},
		{"value with equals", strings.Replace(ok, "DEVTYPE=disk", "PARTNAME=backup=son", 1), false, "PARTNAME", "backup=son"},
		{"empty value", strings.Replace(ok, "DEVTYPE=disk", "DRIVER=", 1), false, "DRIVER", ""},
		{"empty", "", true, "", ""},
		{"no final NUL", strings.TrimSuffix(ok, "\x00"), true, "", ""},
		{"no header at sign", strings.Replace(ok, "add@", "add", 1), true, "", ""},
		{"unknown action", strings.Replace(ok, "add@", "explode@", 1), true, "", ""},
		{"header disagrees with ACTION", strings.Replace(ok, "ACTION=add", "ACTION=remove", 1), true, "", ""},
		{"header disagrees with DEVPATH", strings.Replace(ok, "DEVPATH=/devices/virtual/block/loop0", "DEVPATH=/x", 1), true, "", ""},
		{"relative devpath", strings.ReplaceAll(ok, "/devices/virtual/block/loop0", "loop0"), true, "", ""},
		{"variable without equals", strings.Replace(ok, "DEVTYPE=disk", "DEVTYPE", 1), true, "", ""},
		{"empty key", strings.Replace(ok, "DEVTYPE=disk", "=disk", 1), true, "", ""},
		{"libudev header", "libudev\x00" + strings.Repeat("\xff", 40) + "\x00", true, "", ""},
		{"too many variables", strings.TrimSuffix(ok, "\x00") + strings.Repeat("\x00X=1", maxVars) + "\x00", true, "", ""},
		{"too large", strings.TrimSuffix(ok, "\x00") + "\x00X=" + strings.Repeat("a", MaxMessage) + "\x00", true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := parseUEvent([]byte(tt.msg))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %v, %v; want ErrMalformed", ev, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v; want no error", err)
			}
			if got := ev.Env[tt.key]; got != tt.val {
				t.Errorf("got %s=%q; want %q", tt.key, got, tt.val)
			}
			if ev.KObj != "/devices/virtual/block/loop0" {
				t.Errorf("got KObj %q; want /devices/virtual/block/loop0", ev.KObj)
			}
		})
	}
}

// TestParseRecordings parses every recorded message in testdata.
func TestParseRecordings(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.uevents")
	if len(files) < 4 {
		t.Fatalf("got %d recordings; want at least 4", len(files))
	}
	for _, f := range files {
		for i, m := range recording(t, f) {
			if _, err := parseUEvent(m); err != nil {
				t.Errorf("%s message %d: %v", f, i, err)
			}
		}
	}
}

func recording(t testing.TB, path string) [][]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for _, m := range bytes.SplitAfter(b, []byte("\x00\n")) {
		if len(m) > 0 {
			msgs = append(msgs, bytes.TrimSuffix(m, []byte("\n")))
		}
	}
	return msgs
}

func FuzzParseUEvent(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.uevents")
	for _, file := range files {
		for _, m := range recording(f, file) {
			f.Add(m)
		}
	}
	f.Add([]byte("libudev\x00" + strings.Repeat("\x00", 40)))
	f.Add([]byte("add@/\x00ACTION=add\x00DEVPATH=/\x00SUBSYSTEM=block\x00DEVTYPE=partition\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ev, err := parseUEvent(msg)
		if err != nil {
			if ev != nil {
				t.Fatalf("got event %v with error %v", ev, err)
			}
			return
		}
		if len(msg) > MaxMessage || len(ev.Env) > maxVars {
			t.Fatalf("accepted %d bytes, %d variables", len(msg), len(ev.Env))
		}
		if ev.Env["ACTION"] != string(ev.Action) || ev.Env["DEVPATH"] != ev.KObj || !strings.HasPrefix(ev.KObj, "/") {
			t.Fatalf("accepted inconsistent event %+v", ev)
		}
		// Whatever the kernel says, a device name never escapes its directory.
		if d, ok := devFromEnv(ev.Env, ev.KObj); ok {
			for _, s := range []string{d.name, d.disk} {
				if s == "" || s == "." || s == ".." || strings.Contains(s, "/") {
					t.Fatalf("got device name %q from %q", s, msg)
				}
			}
			if strings.Contains(d.devnode, "..") {
				t.Fatalf("got device node %q", d.devnode)
			}
		}
	})
}
