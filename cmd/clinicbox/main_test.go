package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestHelpExitsZero(t *testing.T) {
	var out bytes.Buffer
	code, err := run(context.Background(), []string{"-h"}, &out, &out)
	if code != 0 || err != nil {
		t.Errorf("-h: got %d, %v; want 0", code, err)
	}
}

func TestDisabledExits125(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "settings.json")
	os.WriteFile(p, []byte(`{"disabled": true, "database": {"url": "postgres://clinicbox@db:5432/postgres"}, "rotation": {"time_zone": "UTC", "swap_at": "08:00"}}`), 0o600)
	var out bytes.Buffer
	code, err := run(context.Background(), []string{"-settings", p, "-state", dir}, &out, &out)
	if code != exitDisabled || err != nil {
		t.Errorf("got %d, %v; want %d", code, err, exitDisabled)
	}
}

// Missing or bad settings keep the service up with a message that says
// what to do, until it is stopped.
func TestBadSettingsWaitWithGuidance(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ body, want string }{
		"missing":   {"", "copy the example from the README"},
		"bad zone":  {`{"database": {"url": "postgres://clinicbox@db/postgres"}, "rotation": {"time_zone": "Mars/Olympus", "swap_at": "08:00"}}`, "rotation.time_zone"},
		"unknown":   {`{"databse": {}}`, "unknown field"},
		"not json":  {`{`, "settings"},
		"bad pins":  {`{"database": {"url": "postgres://clinicbox@db/postgres"}, "rotation": {"time_zone": "UTC"}, "panel": {"green": 17, "amber": 17, "red": 22, "buzzer": 23, "button": 24}}`, "is also panel."},
		"no url":    {`{"rotation": {"time_zone": "UTC"}}`, "database.url"},
		"bad recip": {`{"database": {"url": "postgres://clinicbox@db/postgres"}, "rotation": {"time_zone": "UTC"}, "recipients": ["age1nope"]}`, "recipients"},
		"secret":    {`{"database": {"url": "mysql://clinicbox:clinicbox-test-pw@db/postgres"}, "rotation": {"time_zone": "UTC"}}`, "postgres:// URL"},
	} {
		body := tc.body
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
			if body != "" {
				os.WriteFile(p, []byte(body), 0o600)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // stopped at once: run must return after logging
			var out bytes.Buffer
			code, err := run(ctx, []string{"-settings", p, "-state", dir}, &out, &out)
			if code != 0 || err != nil {
				t.Fatalf("got %d, %v; want 0 after stop", code, err)
			}
			if !strings.Contains(out.String(), "not backing up until the settings are fixed") || !strings.Contains(out.String(), tc.want) {
				t.Errorf("output lacks guidance naming %q:\n%s", tc.want, out.String())
			}
			if strings.Contains(out.String(), "clinicbox-test-pw") {
				t.Errorf("a password reached the log")
			}
		})
	}
}

// The setup code reaches the console, line by line, each time it is shown.
func TestSetupCodeOnConsole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "console")
	var log bytes.Buffer
	show := showOnConsole(p, slog.New(slog.NewTextHandler(&log, nil)))
	show("ABCDE-FGHJK")
	show("KMNPQ-RSTUV")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"setup code for the box's page: ABCDE-FGHJK", "setup code for the box's page: KMNPQ-RSTUV"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("got console %q; want it to hold %q", b, want)
		}
	}
	showOnConsole(filepath.Join(p, "not-a-dir", "console"), slog.New(slog.NewTextHandler(&log, nil)))("ABCDE-FGHJK")
	if !strings.Contains(log.String(), "not on the box's screen") {
		t.Errorf("got log %q; want it to say the code is not on the screen", log.String())
	}
}

// The pages answer to the box's host name, NAME.local and its addresses.
func TestBoxHosts(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	got := boxHosts(nil)()
	want := []string{host, host + ".local"}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		want = append(want, a.(*net.IPNet).IP.String())
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("got %q; want it to hold %q", got, w)
		}
	}
}
