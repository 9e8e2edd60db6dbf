package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func writeClock(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The clock runs on from the file's time, jumps forward when the file
// says so, and refuses to go back or to read anything but one time.
func TestFileClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "clock")
		start := time.Date(2026, 3, 2, 20, 59, 0, 0, time.UTC)
		writeClock(t, path, start.Format(time.RFC3339)+"\n")
		c, err := openFileClock(path)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second) // synctest's fake time
		if got, want := c.Now(), start.Add(30*time.Second); !got.Equal(want) {
			t.Errorf("after 30 s: got %s; want %s", got, want)
		}
		if changed, err := c.read(); changed || err != nil {
			t.Errorf("same file: got changed %v, %v; want neither", changed, err)
		}
		next := start.Add(11 * time.Hour)
		writeClock(t, path, next.Format(time.RFC3339Nano))
		if changed, err := c.read(); !changed || err != nil {
			t.Fatalf("later time: got changed %v, %v; want changed", changed, err)
		}
		if got := c.Now(); !got.Equal(next) {
			t.Errorf("after the jump: got %s; want %s", got, next)
		}
		writeClock(t, path, start.Format(time.RFC3339))
		if _, err := c.read(); err == nil || !strings.Contains(err.Error(), "only moves forward") {
			t.Errorf("earlier time: got %v; want a refusal", err)
		}
		if got := c.Now(); !got.Equal(next) {
			t.Errorf("after the refusal: got %s; want %s", got, next)
		}
		for name, text := range map[string]string{"not a time": "tomorrow", "too long": strings.Repeat("2026-12-03T21:00:00Z ", 10)} {
			writeClock(t, path, text)
			if _, err := c.read(); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
				t.Errorf("%s: got %v; want an error naming the format", name, err)
			}
		}
	})
}

// watch calls moved once per change of the file, after the clock took it.
func TestFileClockWatchPokes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "clock")
		start := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
		writeClock(t, path, start.Format(time.RFC3339))
		c, err := openFileClock(path)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		moved := make(chan time.Time, 4)
		go c.watch(ctx, clockPoll, func() { moved <- c.Now() }, slog.New(slog.DiscardHandler))
		writeClock(t, path, start.Add(time.Hour).Format(time.RFC3339))
		time.Sleep(clockPoll)
		synctest.Wait()
		select {
		case got := <-moved:
			if got.Before(start.Add(time.Hour)) {
				t.Errorf("moved at %s; want at or after %s", got, start.Add(time.Hour))
			}
		default:
			t.Fatal("no poke after the file changed")
		}
		time.Sleep(5 * clockPoll)
		synctest.Wait()
		if len(moved) != 0 {
			t.Errorf("%d pokes without a change; want none", len(moved))
		}
	})
}

// The image the practice flashes runs on the kernel's clock: its config
// never passes the test-and-demo flags.
func TestImageHasNoTestFlags(t *testing.T) {
	b, err := os.ReadFile("../../config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		PackageConfig map[string]struct{ CommandLineFlags []string }
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for pkg, pc := range cfg.PackageConfig {
		for _, f := range pc.CommandLineFlags {
			if strings.Contains(f, "-clock-file") || strings.Contains(f, "-loop-drives") {
				t.Errorf("config.json: %s runs with %s; the image must run on the real clock and real drives", pkg, f)
			}
		}
	}
}
