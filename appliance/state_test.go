package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/rotation"
)

// The box starts, reports the damage and carries on, whatever is wrong
// with the files it reads at start: a 2 MiB drive ID in the custody log, a
// line torn by a power cut, damaged state files, a damaged audit log.
func TestStartsWithDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	set, err := LoadSettings(strings.NewReader(`{"database": {"url": "postgres://clinicbox@127.0.0.1:1/postgres"}, "rotation": {"time_zone": "UTC", "swap_at": "08:00"}}`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	cfg := Config{Settings: set, StateDir: dir, Now: func() time.Time { return now }}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := a.appendCustody(a.custody.Append(rotation.Entry{Time: now, Event: "insert", Decision: rotation.Accepted})); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(t, filepath.Join(dir, "custody.jsonl"), `{"seq":3,"drive":"`+strings.Repeat("D", 2<<20)+`"}`+"\n"+`{"seq":3,"time":"2026-03-02T07:0`)
	appendTo(t, filepath.Join(dir, "audit.jsonl"), `{"seq":1,"caller":"`+strings.Repeat("x", 2<<20)+"\"}\n{\"seq\":2")
	for _, name := range []string{"rotation.json", "box.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{\"drives\": [tru"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err = New(cfg)
	if err != nil {
		t.Fatalf("New with damaged files: got %v; want the box to start", err)
	}
	if _, err := a.NewWeb(nil, nil); err != nil {
		t.Fatalf("NewWeb with a damaged audit log: got %v; want the pages to start", err)
	}
	var said []string
	for _, e := range a.book.Events {
		said = append(said, e.Message)
	}
	for _, want := range []string{"The box's history is damaged", "box.json.damaged", "The rotation state is damaged", "rotation.json.damaged",
		"custody log's line 3 is skipped: it is 2097173 bytes long", "custody log's line 4 is torn", "audit log is damaged", "line 2 is torn"} {
		if !strings.Contains(strings.Join(said, "\n"), want) {
			t.Errorf("events %q; want one saying %q", said, want)
		}
	}
	if err := a.appendCustody(a.custody.Append(rotation.Entry{Time: now, Event: "remove", Decision: rotation.Accepted})); err != nil {
		t.Fatal(err)
	}
	entries, err := a.Custody()
	if err != nil || len(entries) != 3 || entries[2].Seq != 3 {
		t.Fatalf("custody after restart: got %d entries (%v); want 3, the new one on its own line", len(entries), err)
	}
	if ps := rotation.Check(entries, a.key.LogKeys(), nil); len(ps) != 0 {
		t.Errorf("custody chain: got %v; want intact and signed", ps)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
