package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

func TestCustodyVerify(t *testing.T) {
	box := signer.FromSeed(bytes.Repeat([]byte("b"), 32))
	other := signer.FromSeed(bytes.Repeat([]byte("o"), 32))
	hmacKey := chain.HMACSealer([]byte("box key"))
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	legacy := rotation.Continue(nil, hmacKey)
	legacy.Append(rotation.Entry{Time: t0, Drive: "A", Event: "insert", Who: "Maria", Decision: rotation.Accepted})
	log := rotation.Continue(legacy.Entries(), chain.Keys{Signer: box, Public: box.Public()})
	for i := range 4 {
		log.Append(rotation.Entry{Time: t0.Add(time.Duration(i+1) * time.Hour), Drive: "A", Event: "remove", Who: "Maria", Decision: rotation.Accepted})
	}
	entries := log.Entries()
	head, _ := log.Head(t0.Add(5 * time.Hour))
	dir := t.TempDir()
	file := func(name string, write func(*bytes.Buffer)) string {
		var b bytes.Buffer
		write(&b)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	whole := file("custody.jsonl", func(b *bytes.Buffer) { rotation.WriteEntries(b, entries...) })
	cut := file("cut.jsonl", func(b *bytes.Buffer) { rotation.WriteEntries(b, entries[:3]...) })
	torn := file("torn.jsonl", func(b *bytes.Buffer) { rotation.WriteEntries(b, entries...); b.WriteString(`{"seq":6,"ti`) })
	edited := file("edited.jsonl", func(b *bytes.Buffer) {
		rotation.WriteEntries(b, entries...)
		s := strings.Replace(b.String(), `"who":"Maria"`, `"who":"Sam"`, 3)
		b.Reset()
		b.WriteString(s)
	})
	export := file("custody-2026-03.json", func(b *bytes.Buffer) {
		json.NewEncoder(b).Encode(map[string]any{"chain": map[string]any{"intact": true}, "entries": entries})
	})
	anchor := file("custody-head.json", func(b *bytes.Buffer) { json.NewEncoder(b).Encode(chain.Heads{Heads: []chain.Head{head}}) })
	csvOK := file("month.csv", func(b *bytes.Buffer) { rotation.WriteCSV(b, entries, nil) })
	csvEdited := file("month-edited.csv", func(b *bytes.Buffer) {
		rotation.WriteCSV(b, entries, nil)
		s := strings.Replace(b.String(), ",Maria,", ",Sam,", 1)
		b.Reset()
		b.WriteString(s)
	})
	key := box.Public().String()
	tests := []struct {
		name string
		args []string
		ok   bool
		want []string
	}{
		{"intact with anchor and CSV", []string{"--key", key, "--anchor", anchor, "--csv", csvOK, whole}, true,
			[]string{"NOTE  unsigned legacy part: entries 1 to 1 were sealed before signing (checkable only on the box)", "VERDICT: the custody log (5 entries, 1 to 5) verifies"}},
		{"page's JSON export", []string{"--key", key, export}, true, []string{"verifies"}},
		{"truncated", []string{"--key", key, "--anchor", anchor, cut}, false, []string{"FAULT truncated: truncated after entry 3", "entries 4 to 5 are missing", "does NOT verify"}},
		{"edited", []string{"--key", key, edited}, false, []string{"FAULT edited entry: entry 1 (seq 1)", "FAULT edited entry: entry 2 (seq 2)"}},
		{"another key", []string{"--key", other.Public().String(), whole}, false, []string{"FAULT signed by another key: entry 2 (seq 2)"}},
		{"torn last line", []string{"--key", key, torn}, true, []string{"NOTE  torn last line:", "line 6 is torn", "verifies"}},
		{"edited CSV", []string{"--key", key, "--csv", csvEdited, whole}, false, []string{`row 2 (seq 1) has who "Sam" where the log's entry has "Maria"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runCustody(context.Background(), append([]string{"verify"}, tt.args...), &out, &errOut)
			if (err == nil) != tt.ok {
				t.Errorf("got error %v; want ok %t\n%s%s", err, tt.ok, out.String(), errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("got output:\n%s\nwant it to contain %q", out.String(), w)
				}
			}
		})
	}
}
