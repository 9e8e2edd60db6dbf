package alert

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// A restarted notifier remembers what it alerted, and what it has yet to
// deliver.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first, _ := newTest(t, Config{StateDir: dir})
	failing := cond("backup failed", status.Failure, base)
	first.Update(base.Add(3*time.Minute), stat(base, failing))
	if got := first.Stats().Pending; got != 1 {
		t.Fatalf("pending before restart: got %d; want 1", got)
	}

	second, _ := newTest(t, Config{StateDir: dir})
	if got := second.Stats().Pending; got != 1 {
		t.Errorf("pending after restart: got %d; want 1 (the undelivered alert)", got)
	}
	queued(second)
	tests := []struct {
		at   time.Duration
		want []string
	}{
		{10 * time.Minute, nil},
		{1 * time.Hour, nil},
		{4*time.Hour + 3*time.Minute, []string{"reminder:backup failed"}},
	}
	for _, tc := range tests {
		now := base.Add(tc.at)
		second.Update(now, stat(now, failing))
		if got := queued(second); !slices.Equal(got, tc.want) {
			t.Errorf("after restart at +%v: got %q; want %q", tc.at, got, tc.want)
		}
	}
	// No temporary files are left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != stateFile {
		t.Errorf("state dir holds %v; want only %s", entries, stateFile)
	}
}

func TestDamagedStateStartsAfresh(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, _ := newTest(t, Config{StateDir: dir})
	n.Update(base.Add(3*time.Minute), stat(base, cond("backup failed", status.Failure, base)))
	if got := queued(n); !slices.Equal(got, []string{"firing:backup failed"}) {
		t.Errorf("got %q; want the alert", got)
	}
}

// A condition whose words change every minute does not rewrite the state
// file every minute.
func TestStateWrittenOnlyOnChange(t *testing.T) {
	dir := t.TempDir()
	n, _ := newTest(t, Config{StateDir: dir})
	path := filepath.Join(dir, stateFile)
	lag := func(at time.Duration, text string) {
		now := base.Add(at)
		c := cond("offsite down", status.Attention, base)
		c.Message = text
		n.Update(now, stat(now, c))
	}
	lag(time.Minute, "The vault is 61 seconds behind.")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, base, base); err != nil {
		t.Fatal(err)
	}
	lag(2*time.Minute, "The vault is 121 seconds behind.")
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(base) || before.Size() != after.Size() {
		t.Errorf("state file rewritten without a change (modified %v)", after.ModTime())
	}
	lag(16*time.Minute, "The vault is 16 minutes behind.")
	if st, _ := os.Stat(path); st.ModTime().Equal(base) {
		t.Errorf("state file not written after the alert")
	}
}
