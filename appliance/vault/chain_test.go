package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// Retention keeps every backup a kept incremental one builds on, however
// old, and only those: an old full backup nothing builds on goes.
func TestRetentionKeepsChains(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	span := &Span{Timeline: 1}
	day := func(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }
	arrivals := []*Arrival{
		{ID: "20261001T000000Z", Time: day(63), Verified: span},                             // an old full nothing needs
		{ID: "20261003T000000Z", Time: day(61), Verified: span},                             // the chain's full
		{ID: "20261013T000000Z", Time: day(51), Verified: span, Parent: "20261003T000000Z"}, // incremental
		{ID: "20261113T000000Z", Time: day(20), Verified: span, Parent: "20261013T000000Z"}, // the PITR anchor
		{ID: "20261202T000000Z", Time: day(1), Verified: span, Parent: "20261113T000000Z"},  // the newest
	}
	keep := Retention{}.withDefaults().keep(arrivals, now)
	for _, id := range []string{"20261003T000000Z", "20261013T000000Z", "20261113T000000Z", "20261202T000000Z"} {
		if _, ok := keep[id]; !ok {
			t.Errorf("%s removed; want it kept (%v)", id, keep)
		}
	}
	if why := keep["20261003T000000Z"]; !strings.Contains(why, "20261013T000000Z builds on it") {
		t.Errorf("the chain's full is kept because %q; want because the incremental builds on it", why)
	}
	if why, ok := keep["20261001T000000Z"]; ok {
		t.Errorf("the old full nothing builds on is kept: %s", why)
	}
}

// commitIncremental uploads and commits an incremental backup of parent
// whose backup.sig names sigParent, and returns the vault's answer.
func (f *fixture) commitIncremental(id, parent, sigParent string, span Span) (int, wire.Problem) {
	f.t.Helper()
	data := walBytes(3000, 6)
	sum := sha256.Sum256(data)
	meta, _ := json.Marshal(archive.Backup{ID: id, SystemID: f.info.SystemID, Timeline: span.Timeline, StartLSN: span.Start, EndTimeline: span.EndTimeline, EndLSN: span.End,
		Kind: archive.KindIncremental, Parent: parent,
		Files: []archive.StoredFile{{Name: "base.tar.delta.zst.age", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}}})
	f.stage(id, meta, "base.tar.delta.zst.age", data)
	st := statement(id, f.info.SystemID, span)
	st.Kind, st.Parent = archive.KindIncremental, sigParent
	staged := filepath.Join(f.dir, "boxes", "nBOX1", "repo", "backups", ".incomplete-"+id, "backup.sig")
	if err := os.WriteFile(staged, archive.EncodeBackupSig(testSigner, st), 0o644); err != nil {
		f.t.Fatal(err)
	}
	var p wire.Problem
	code := f.do("box:1", "POST", "/v1/backups/"+id+"/commit", nil, &p)
	return code, p
}

// An incremental backup is committed only when the vault holds its parent,
// and confirmed only when the box's signature names the same parent.
func TestIncrementalNeedsItsParent(t *testing.T) {
	span := Span{Timeline: 1, Start: 2*segSize + 10, EndTimeline: 1, End: 3 * segSize}
	f := newFixture(t)
	f.createRepo("box:1")
	f.storeWAL()
	if code, p := f.commitIncremental("20261124T101500Z", "20261121T101500Z", "20261121T101500Z", span); code == 200 || p.Code != "missing-parent" {
		t.Fatalf("an incremental without its parent: got %d %q; want refused as missing-parent", code, p.Code)
	}
	f.commitClaiming("20261121T101500Z", 1, span.Start, 1, span.End)
	if code, p := f.commitIncremental("20261122T101500Z", "20261121T101500Z", "20261121T101500Z", span); code != 200 {
		t.Fatalf("an incremental with its parent: got %d %s; want 200", code, p.Error)
	}
	if code, p := f.commitIncremental("20261123T101500Z", "20261122T101500Z", "20261121T101500Z", span); code != 200 {
		t.Fatalf("commit: got %d %s", code, p.Error)
	}
	b, err := f.v.getBox("nBOX1")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"20261122T101500Z": true, "20261123T101500Z": false} {
		a, err := b.arrival(id)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Verified != nil; got != want {
			t.Errorf("%s confirmed: %v; want %v (checks %+v)", id, got, want, a.Checks)
		}
	}
}

// Retention over chains as the vault stores them: long after they all
// arrived, the newest backup (an incremental) is kept with the incremental
// and the full backup it builds on, an older full backup nothing builds on
// is removed, and so is the abandoned upload of a further incremental.
func TestPruneKeepsAChainAndDropsAbandonedUploads(t *testing.T) {
	span := Span{Timeline: 1, Start: 2*segSize + 10, EndTimeline: 1, End: 3 * segSize}
	f := newFixture(t)
	f.createRepo("box:1")
	f.storeWAL()
	const lone, full, inc1, inc2, abandoned = "20261001T000000Z", "20261003T000000Z", "20261013T000000Z", "20261113T000000Z", "20261202T000000Z"
	f.commitClaiming(lone, span.Timeline, span.Start, span.EndTimeline, span.End)
	f.commitClaiming(full, span.Timeline, span.Start, span.EndTimeline, span.End)
	for _, c := range [][2]string{{inc1, full}, {inc2, inc1}} {
		if code, p := f.commitIncremental(c[0], c[1], c[1], span); code != 200 {
			t.Fatalf("commit %s: got %d %s", c[0], code, p.Error)
		}
	}
	data := walBytes(3000, 6)
	meta, _ := json.Marshal(archive.Backup{ID: abandoned, SystemID: f.info.SystemID, Timeline: 1, StartLSN: span.Start, EndTimeline: 1, EndLSN: span.End,
		Kind: archive.KindIncremental, Parent: inc2, Files: []archive.StoredFile{{Name: "base.tar.delta.zst.age", Size: int64(len(data)) + 100, SHA256: strings.Repeat("0", 64)}}})
	f.stage(abandoned, meta, "base.tar.delta.zst.age", data)

	removed, err := f.v.Prune(time.Now().Add(400 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(f.dir, "boxes", "nBOX1", "repo", "backups")
	for id, kept := range map[string]bool{lone: false, full: true, inc1: true, inc2: true} {
		if _, err := os.Stat(filepath.Join(repo, id, "backup.json")); (err == nil) != kept {
			t.Errorf("backup %s kept: %v; want %v (removed %+v)", id, err == nil, kept, removed)
		}
	}
	if _, err := os.Stat(filepath.Join(repo, ".incomplete-"+abandoned)); err == nil {
		t.Errorf("the abandoned upload of %s is still there (removed %+v)", abandoned, removed)
	}
}
