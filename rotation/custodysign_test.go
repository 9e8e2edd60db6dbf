package rotation

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

var (
	boxSign   = signer.FromSeed([]byte(strings.Repeat("b", 32)))
	otherSign = signer.FromSeed([]byte(strings.Repeat("o", 32)))
	boxKeys   = chain.Keys{Signer: boxSign, Public: boxSign.Public()}
	checkKeys = chain.Keys{Public: boxSign.Public()}
)

// signedLog returns n signed custody entries.
func signedLog(t *testing.T, keys chain.Keys, entries []Entry, n int) []Entry {
	t.Helper()
	log, err := NewLog(entries, keys)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, time.June, 2, 8, 5, 0, 0, time.UTC)
	for i := range n {
		log.Append(Entry{Time: start.Add(time.Duration(len(entries)+i) * time.Minute), Drive: "A", Generation: "Son", Event: "insert", Who: "Maria", Decision: Accepted})
	}
	return log.Entries()
}

// kinds lists the problems' kinds and sequence numbers, "kind@seq".
func kinds(ps []chain.Problem) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s@%d", p.Kind, p.Seq))
	}
	return strings.Join(out, ", ")
}

func TestCustodySigned(t *testing.T) {
	at := time.Date(2025, time.June, 3, 0, 0, 0, 0, time.UTC)
	headAt := func(e []Entry, seq int64, k chain.Keys) chain.Head {
		return chain.SignHead(k, "custody", seq, e[seq-1].Hash, at)
	}
	otherKeys := chain.Keys{Signer: otherSign, Public: otherSign.Public()}
	tests := []struct {
		name    string
		tamper  func(e []Entry) ([]Entry, []chain.Head)
		want    string
		reasons []string
	}{
		{"untouched", func(e []Entry) ([]Entry, []chain.Head) { return e, []chain.Head{headAt(e, 5, boxKeys)} }, "", nil},
		{"edited", func(e []Entry) ([]Entry, []chain.Head) { e[1].Who = "Sam"; return e, nil }, "edited entry@2", nil},
		{"edited and rehashed", func(e []Entry) ([]Entry, []chain.Head) {
			e[2].Who = "Sam"
			e[2].Hash = chain.HexSum(e[2].sum())
			return e, nil
		}, "forged signature@3, removed or reordered entries@4", nil},
		{"signed by another key", func(e []Entry) ([]Entry, []chain.Head) {
			e[3].Sig, e[3].Key = otherSign.Sign(CustodyPurpose, []byte(e[3].Hash)), otherSign.Public().String()
			return e, nil
		}, "signed by another key@4", nil},
		{"unsigned entry appended", func(e []Entry) ([]Entry, []chain.Head) {
			l := Continue(e, nil)
			l.Append(Entry{Time: at, Event: "remove", Decision: Accepted})
			return l.Entries(), nil
		}, "unsigned entry@6", nil},
		{"middle entry removed", func(e []Entry) ([]Entry, []chain.Head) { return slices.Delete(e, 2, 3), nil }, "removed or reordered entries@4", nil},
		{"truncated after 3", func(e []Entry) ([]Entry, []chain.Head) {
			return e[:3], []chain.Head{headAt(e, 4, boxKeys), headAt(e, 5, boxKeys)}
		}, "truncated@3", []string{"truncated after entry 3", "entries 4 to 5 are missing"}},
		{"emptied", func(e []Entry) ([]Entry, []chain.Head) { return nil, []chain.Head{headAt(e, 5, boxKeys)} }, "truncated@0", []string{"entries 1 to 5 are missing"}},
		{"rewritten and re-signed by another key", func(e []Entry) ([]Entry, []chain.Head) {
			forged := Continue(nil, otherKeys)
			for _, x := range e {
				x.Who = "Sam"
				forged.Append(x)
			}
			return forged.Entries(), []chain.Head{headAt(e, 5, boxKeys)}
		}, "signed by another key@1, signed by another key@2, signed by another key@3, signed by another key@4, signed by another key@5, rewritten history@5", nil},
		{"forged anchor", func(e []Entry) ([]Entry, []chain.Head) {
			h := headAt(e, 5, boxKeys)
			h.Seq = 9
			return e, []chain.Head{h, headAt(e, 5, otherKeys)}
		}, "untrusted anchor@9, untrusted anchor@5", []string{"forged", "another key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, anchors := tt.tamper(signedLog(t, boxKeys, nil, 5))
			ps := Check(entries, checkKeys, anchors)
			if got := kinds(ps); got != tt.want {
				t.Fatalf("got problems %q; want %q", got, tt.want)
			}
			var all []string
			for _, p := range ps {
				all = append(all, p.Reason)
			}
			for _, want := range tt.reasons {
				if !strings.Contains(strings.Join(all, "; "), want) {
					t.Errorf("got %q; want a problem saying %q", all, want)
				}
			}
		})
	}
}

// TestCustodyLegacyTransition checks a log sealed with the old HMAC key
// and then continued signed.
func TestCustodyLegacyTransition(t *testing.T) {
	hmacKey := chain.HMACSealer([]byte("box key"))
	legacy := sampleLog(t, hmacKey)[:3]
	onBox := chain.Keys{Signer: boxSign, Public: boxSign.Public(), Legacy: hmacKey}
	entries := signedLog(t, onBox, legacy, 2)
	if entries[2].Sig != nil || entries[3].Sig == nil || entries[3].Seal != nil {
		t.Fatalf("got entry 3 signed %t, entry 4 signed %t sealed %t; want the chain signed from entry 4", entries[2].Sig != nil, entries[3].Sig != nil, entries[3].Seal != nil)
	}
	rehash := func(e []Entry, i int) []Entry { e[i].Who = "Sam"; e[i].Hash = chain.HexSum(e[i].sum()); return e }
	tests := []struct {
		name   string
		keys   chain.Keys
		tamper func([]Entry) []Entry
		want   string
	}{
		{"auditor", checkKeys, func(e []Entry) []Entry { return e }, "unsigned legacy part@1"},
		{"on the box", onBox, func(e []Entry) []Entry { return e }, ""},
		{"auditor, legacy entry rewritten", checkKeys, func(e []Entry) []Entry { return rehash(e, 1) }, "removed or reordered entries@3, unsigned legacy part@1"},
		{"on the box, legacy entry rewritten", onBox, func(e []Entry) []Entry { return rehash(e, 1) }, "forged signature@2, removed or reordered entries@3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := Check(tt.tamper(slices.Clone(entries)), tt.keys, nil)
			if got := kinds(ps); got != tt.want {
				t.Fatalf("got problems %q; want %q", got, tt.want)
			}
			if tt.want == "unsigned legacy part@1" && !strings.Contains(ps[0].Reason, "entries 1 to 3 were sealed before signing (checkable only on the box)") {
				t.Errorf("got %q; want it to name entries 1 to 3 as sealed before signing", ps[0].Reason)
			}
		})
	}
	if err := Verify(entries, checkKeys); err != nil {
		t.Errorf("Verify with the public key: got %v; want nil (the legacy part is not a fault)", err)
	}
}

func TestReadLogSkipsBadLines(t *testing.T) {
	var b strings.Builder
	entries := signedLog(t, boxKeys, nil, 3)
	WriteEntries(&b, entries[0])
	b.WriteString(`{"seq":2,"drive":"` + strings.Repeat("X", 2<<20) + "\"}\n")
	b.WriteString("not json\n\n")
	WriteEntries(&b, entries[1])
	var last strings.Builder
	WriteEntries(&last, entries[2])
	b.WriteString(last.String()[:40])
	got, bad, err := ReadLog(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Seq != 2 {
		t.Errorf("got %d entries; want entries 1 and 2", len(got))
	}
	want := []string{"line 2 is skipped: it is 2097173 bytes long, more than the 65536 a log line may be",
		"line 3 is skipped: not a custody entry", "line 6 is torn (cut short by a power cut during an append)"}
	if len(bad) != len(want) {
		t.Fatalf("got bad lines %v; want %d", bad, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(bad[i].String(), w) {
			t.Errorf("bad line %d: got %q; want it to start %q", i, bad[i], w)
		}
	}
	if _, err := ReadEntries(strings.NewReader(b.String())); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ReadEntries: got %v; want an error naming line 2", err)
	}
}
