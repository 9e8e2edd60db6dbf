package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

var t0 = time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)

func rec(i int) Record {
	return Record{Time: t0.Add(time.Duration(i) * time.Minute), Caller: "lan:192.168.1.20", Role: "staff", Action: fmt.Sprintf("GET /api/status %d", i), Allowed: true}
}

func fill(t *testing.T, path string, sealer chain.Sealer, n int) {
	t.Helper()
	l, err := Open(path, sealer)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	key := chain.HMACSealer([]byte("box key"))
	fill(t, path, key, 3)
	fill(t, path, key, 2)
	recs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[4].Seq != 5 {
		t.Fatalf("got %d records, last seq %d; want 5, 5", len(recs), recs[len(recs)-1].Seq)
	}
	if err := Verify(recs, key); err != nil {
		t.Errorf("got %v; want an intact chain", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("got mode %v; want 0600", st.Mode().Perm())
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	key := chain.HMACSealer([]byte("box key"))
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	fill(t, path, key, 5)
	good, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func([]Record) []Record
		sealer chain.Sealer
		index  int
		reason string
	}{
		{"edited", func(r []Record) []Record { r[2].Allowed = false; return r }, key, 2, "edited"},
		{"removed", func(r []Record) []Record { return append(r[:1], r[2:]...) }, key, 1, "numbered"},
		{"swapped", func(r []Record) []Record { r[1], r[2] = r[2], r[1]; return r }, key, 1, "numbered"},
		{"other key", func(r []Record) []Record { return r }, chain.HMACSealer([]byte("other")), 0, "seal"},
		{"rehashed without key", func(r []Record) []Record {
			r[3].Why = "forged"
			s := r[3].sum()
			r[3].Hash = fmt.Sprintf("%x", s)
			return r
		}, key, 3, "seal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := tt.change(append([]Record(nil), good...))
			err := Verify(recs, tt.sealer)
			var ce *chain.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v; want a *chain.Error", err)
			}
			if ce.Index != tt.index || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("got record %d %q; want record %d mentioning %q", ce.Index, ce.Reason, tt.index, tt.reason)
			}
		})
	}
}

func TestOpenReportsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(string) string
		want   string
	}{
		{"edited record", func(s string) string { return strings.Replace(s, `"allowed":true`, `"allowed":false`, 1) }, "entry 1 (seq 1) does not match its hash"},
		{"torn last line", func(s string) string { return s[:len(s)-30] }, "line 3 is torn"},
		{"huge line", func(s string) string {
			i := strings.Index(s, "\n") + 1
			return s[:i] + `{"caller":"` + strings.Repeat("x", 2<<20) + "\"}\n" + s[i:]
		}, "line 2 is skipped: it is 2097166 bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			fill(t, path, nil, 3)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tt.damage(string(b))), 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(path, nil)
			if err != nil {
				t.Fatalf("Open: got %v; want the log opened and the damage reported", err)
			}
			if got := strings.Join(l.Problems(), "; "); !strings.Contains(got, tt.want) {
				t.Errorf("problems: got %q; want one saying %q", got, tt.want)
			}
			r, err := l.Append(rec(9))
			l.Close()
			if err != nil {
				t.Fatal(err)
			}
			recs, _, err := Load(path)
			if err != nil || len(recs) == 0 || recs[len(recs)-1].Hash != r.Hash {
				t.Errorf("after an append: got %d records (%v); want the new record read back on its own line", len(recs), err)
			}
		})
	}
}

// TestSignedAfterSealed checks a log sealed with the old HMAC key and
// continued signed, as an auditor with the public key alone sees it.
func TestSignedAfterSealed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	hmacKey := chain.HMACSealer([]byte("box key"))
	sign := signer.FromSeed([]byte(strings.Repeat("s", 32)))
	fill(t, path, hmacKey, 3)
	fill(t, path, chain.Keys{Signer: sign, Public: sign.Public(), Legacy: hmacKey}, 2)
	recs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	auditor := chain.Keys{Public: sign.Public()}
	ps := Check(recs, auditor, nil)
	if len(ps) != 1 || ps[0].Kind != chain.Legacy || !strings.Contains(ps[0].Reason, "entries 1 to 3 were sealed before signing (checkable only on the box)") {
		t.Errorf("got %v; want only the legacy part 1 to 3 reported", ps)
	}
	recs[4].Why = "forged"
	recs[4].Hash = fmt.Sprintf("%x", recs[4].sum())
	if err := Verify(recs, auditor); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("rewritten signed record: got %v; want a forged signature", err)
	}
}

func TestRotationKeepsChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.MaxBytes = 1000
	for i := range 20 {
		if _, err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	older, err := ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	newer, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Size() > 1000 || len(newer) == 0 || len(older) == 0 {
		t.Fatalf("got %d bytes, %d+%d records; want at most 1000 bytes in two non-empty files", st.Size(), len(older), len(newer))
	}
	if err := Verify(newer, nil); err != nil {
		t.Errorf("current file alone: got %v; want intact", err)
	}
	if err := Verify(append(older, newer...), nil); err != nil {
		t.Errorf("both files: got %v; want intact", err)
	}
	if last := newer[len(newer)-1].Seq; last != 20 {
		t.Errorf("got last seq %d; want 20", last)
	}
	if _, err := Open(path, nil); err != nil {
		t.Errorf("reopen after rotation: %v", err)
	}
}

func TestRotationKeepsFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.MaxBytes, l.Keep = 300, 3
	for i := range 40 {
		if _, err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	files := Files(path)
	if len(files) != 4 || files[0] != path+".3" || files[3] != path {
		t.Fatalf("got files %v; want %s.3 to .1 and %s", files, path, path)
	}
	var all []Record
	for _, f := range files {
		recs, err := ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	if err := Verify(all, nil); err != nil || all[len(all)-1].Seq != 40 {
		t.Errorf("kept files: got %v ending at %d; want an intact chain ending at 40", err, all[len(all)-1].Seq)
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				if _, err := l.Append(rec(i*10 + j)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	tail, err := l.Tail(5)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	recs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 80 {
		t.Errorf("got %d records; want 80", len(recs))
	}
	if err := Verify(recs, nil); err != nil {
		t.Errorf("got %v; want intact", err)
	}
	if len(tail) != 5 || tail[4].Seq != 80 {
		t.Errorf("tail: got %d records ending at %d; want 5 ending at 80", len(tail), tail[len(tail)-1].Seq)
	}
}
