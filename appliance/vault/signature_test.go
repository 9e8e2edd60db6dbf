package vault

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

// statement is what a box signs for backup id over span.
func statement(id, system string, span Span) archive.Statement {
	return archive.Statement{Format: archive.FormatVersion, Kind: archive.KindFull, ID: id, SystemID: system,
		Timeline: span.Timeline, StartLSN: span.Start, EndTimeline: span.EndTimeline, EndLSN: span.End}
}

// backupSig is a backup.sig for backup id over span, signed by k.
func backupSig(k *signer.Key, id, system string, span Span) []byte {
	return archive.EncodeBackupSig(k, statement(id, system, span))
}

// A backup is confirmed only with the box's signature of its span: one
// whose backup.sig is missing (in a repository that signs its backups),
// forged, by another key, of another backup or of another span stays
// unconfirmed, and retention deletes no WAL for it.
func TestBackupSignatureOnArrival(t *testing.T) {
	const id = "20261122T101500Z"
	span := Span{Timeline: 1, Start: 2*segSize + 10, EndTimeline: 1, End: 3 * segSize}
	system := "7300000000000000001"
	altered := func() []byte {
		var s map[string]json.RawMessage
		json.Unmarshal(backupSig(boxSign, id, system, span), &s)
		longer := span
		longer.End += 100
		s["statement"], _ = json.Marshal(statement(id, system, longer))
		b, _ := json.Marshal(s)
		return b
	}
	other := span
	other.Start = segSize
	for _, tc := range []struct {
		name     string
		signs    bool // the repository info names the box's key (format 2)
		sig      []byte
		verified bool
		segments int
	}{
		{"signed by the box", true, backupSig(boxSign, id, system, span), true, 3},
		{"no backup.sig", true, nil, false, 5},
		{"signed by another key", true, backupSig(otherSign, id, system, span), false, 5},
		{"statement altered after signing", true, altered(), false, 5},
		{"signed span is not the claimed one", true, backupSig(boxSign, id, system, other), false, 5},
		{"statement of another backup", true, backupSig(boxSign, "20261101T101500Z", system, span), false, 5},
		{"not JSON", true, []byte("signed, honest"), false, 5},
		{"format 1 repository, no backup.sig", false, nil, true, 3},
		{"format 1 repository, no key pinned", false, backupSig(boxSign, id, system, span), false, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.createRepo("box:1")
			if tc.signs {
				f.nameSigner(boxSign)
			} else {
				f.formatOne()
			}
			f.storeWAL()
			f.commitSigned(id, span, tc.sig)
			a := f.arrival(id)
			if got := a.Verified != nil; got != tc.verified {
				t.Errorf("verified: got %v; want %v (checks %+v)", got, tc.verified, a.Checks)
			}
			if _, err := f.v.Prune(time.Now().Add(40 * 24 * time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got := f.segments(); len(got) != tc.segments {
				t.Errorf("segments left: got %v; want %d of 5", got, tc.segments)
			}
		})
	}
}

func (f *fixture) arrival(id string) Arrival {
	f.t.Helper()
	var a Arrival
	data, err := os.ReadFile(filepath.Join(f.dir, "boxes", "nBOX1", "arrivals", id+".json"))
	if err == nil {
		err = json.Unmarshal(data, &a)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// formatOne makes the repository info say format 1, with no signer, as a
// box from before signing sent it.
func (f *fixture) formatOne() {
	f.t.Helper()
	p := filepath.Join(f.dir, "boxes", "nBOX1", "repo", "clinicbox-repo.json")
	var info map[string]any
	data, _ := os.ReadFile(p)
	if err := json.Unmarshal(data, &info); err != nil {
		f.t.Fatal(err)
	}
	info["format"] = 1
	delete(info, "signer")
	data, _ = json.Marshal(info)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
}
