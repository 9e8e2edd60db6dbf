package main

import (
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{7}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.in); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil): got %v; want NaN", got)
	}
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    row
		want string // the result cell
	}{
		{"ratio met", ratioAtMost("wall", "%.1f", 10, 10, 1.0, ""), "PASS"},
		{"ratio missed", ratioAtMost("wall", "%.1f", 10.1, 10, 1.0, ""), "MISS"},
		{"twice as fast", ratioAtMost("wall", "%.1f", 5, 10, 0.5, " (2x faster)"), "PASS"},
		{"not twice as fast", ratioAtMost("wall", "%.1f", 6, 10, 0.5, " (2x faster)"), "MISS"},
		{"memory met", atMost("rss", "%.1f", 64, nan, 64, "MiB"), "PASS"},
		{"memory missed", atMost("rss", "%.1f", 64.5, 30, 64, "MiB"), "MISS"},
		{"rate met", atLeast("MB/s", "%.0f", 500, 500, "MB/s"), "PASS"},
		{"rate missed", atLeast("MB/s", "%.0f", 499, 500, "MB/s"), "MISS"},
		{"informative", values("bytes", "%.1f", 1, 2), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.cells()[5]; got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestMisses(t *testing.T) {
	sections := []*section{
		{title: "A", rows: []row{ratioAtMost("wall", "%.1f", 2, 1, 1.0, ""), values("cpu", "%.1f", 9, 1)}},
		{title: "B", skip: "no restore"},
		{title: "C", err: errors.New("boom")},
		{title: "D", rows: []row{atMost("rss", "%.1f", 10, nan, 64, "MiB")}},
	}
	got := misses(sections)
	want := []string{"A: wall (<= 1.0x)", "B: skipped", "C: failed"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestParseVerify(t *testing.T) {
	out := "backup 20260101T000000Z: ok (12 files)\nchecked 1 backups, 3 WAL segments, 212.5 MB stored (1093.7 MB raw) in 1.9s\n"
	stored, raw, err := parseVerify(out)
	if err != nil {
		t.Fatal(err)
	}
	if stored != 212.5 || raw != 1093.7 {
		t.Errorf("got %v stored, %v raw; want 212.5, 1093.7", stored, raw)
	}
	if _, _, err := parseVerify("problem: something\n"); err == nil {
		t.Error("got no error for output without a summary line; want one")
	}
}

func TestQuickDefaults(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-runs", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.scale != 5 || cfg.runs != 2 || cfg.walMB != 48 || cfg.liveFor != 10*time.Second {
		t.Errorf("got scale %d runs %d wal %d live %s; want 5, 2 (given), 48, 10s", cfg.scale, cfg.runs, cfg.walMB, cfg.liveFor)
	}
	if _, err := parseFlags([]string{"-runs", "0"}, io.Discard); err == nil {
		t.Error("got no error for -runs 0; want one")
	}
}

func TestSkippedSectionSaysWhy(t *testing.T) {
	var b strings.Builder
	(&section{title: "Restore", skip: "no restore command yet"}).writeMarkdown(&b)
	if !strings.Contains(b.String(), "**Skipped:** no restore command yet") {
		t.Errorf("got %q; want the skip reason", b.String())
	}
}

func TestOnlySections(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		want    []string
		wantErr bool
	}{
		{"backlog", []string{"backlog"}, false},
		{"base,verify", []string{"base", "verify"}, false},
		{"wal", nil, true},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			cfg, err := parseFlags([]string{"-only", tc.arg}, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v; want error %v", err, tc.wantErr)
			}
			if len(cfg.only) != len(tc.want) {
				t.Errorf("got %v; want %v", cfg.only, tc.want)
			}
			for _, name := range tc.want {
				if !cfg.only[name] {
					t.Errorf("got %v; want %s in it", cfg.only, name)
				}
			}
		})
	}
}
