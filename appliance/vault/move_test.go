package vault

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

func init() {
	// The replacement box: a new tailnet node with the box's tag.
	testPeers["newbox:1"] = tailnet.Peer{StableID: "nNEW", Node: "box", Tags: []string{"tag:clinicbox"}}
}

// signedMove is a move of namespace from to identity to, dated at, signed
// by k.
func signedMove(k *signer.Key, from, to string, at time.Time) []byte {
	st, _ := json.Marshal(wire.MoveStatement{From: from, To: to, Time: at})
	body, _ := json.Marshal(wire.MoveRequest{Statement: st, Signature: k.Sign(wire.MovePurpose, st)})
	return body
}

// A replacement box with the practice's signing key takes over the old
// box's namespace: it reads where the WAL stands and goes on writing it,
// the old identity writes nothing more, and the move is in moves.json and
// the audit log, and survives a restart of the vault.
func TestNamespaceMovesWithTheBoxsKey(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	f.storeWAL()
	var ans wire.MoveAnswer
	var p wire.Problem
	if code := f.do("newbox:1", "POST", "/v1/move", signedMove(boxSign, "nBOX1", "nNEW", time.Now()), &ans); code != 200 || ans.Namespace != "nBOX1" {
		t.Fatalf("move: got %d %+v; want 200 into nBOX1", code, ans)
	}
	f.open() // the move is durable
	var pos wire.Position
	if code := f.do("newbox:1", "GET", "/v1/wal", nil, &pos); code != 200 || pos.Durable != 4*segSize+1000 {
		t.Fatalf("the new box reads position %d %+v; want the old box's %d", code, pos, 4*segSize+1000)
	}
	if code, p := f.record("newbox:1", 4, 1000, walBytes(500, 3)); code != 200 {
		t.Fatalf("the new box continues the WAL: got %d %s", code, p.Error)
	}
	if code := f.do("box:1", "GET", "/v1/wal", nil, &p); code != 403 || !strings.Contains(p.Error, "moved to identity nNEW") {
		t.Errorf("the old identity: got %d %q; want 403, moved", code, p.Error)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "boxes", "nNEW")); !os.IsNotExist(err) {
		t.Errorf("the new identity has a namespace of its own (%v); want none", err)
	}
	var recs []moveRecord
	data, _ := os.ReadFile(filepath.Join(f.dir, "moves.json"))
	if err := json.Unmarshal(data, &recs); err != nil || len(recs) != 1 || recs[0].From != "nBOX1" || recs[0].To != "nNEW" {
		t.Errorf("moves.json: %v %+v; want the one move", err, recs)
	}
	audit, _ := os.ReadFile(filepath.Join(f.dir, "audit.jsonl"))
	if !bytes.Contains(audit, []byte(`"action":"namespace.move","target":"nBOX1 -\u003e nNEW","status":200`)) {
		t.Errorf("the audit log does not record the move:\n%s", audit)
	}
	// Asked again at the next start, with a new statement: nothing changes.
	if code := f.do("newbox:1", "POST", "/v1/move", signedMove(boxSign, "nBOX1", "nNEW", time.Now().Add(time.Second)), &ans); code != 200 || !ans.Already {
		t.Errorf("the move asked again: got %d %+v; want 200, already", code, ans)
	}
	data, _ = os.ReadFile(filepath.Join(f.dir, "moves.json"))
	if err := json.Unmarshal(data, &recs); err != nil || len(recs) != 1 {
		t.Errorf("moves.json after the move was asked again: %v %+v; want still the one move", err, recs)
	}
}

// A move is refused, and nothing changes, when the new identity already
// stored a repository of its own, when it is forged, signed by another
// key, dated outside the hour, replayed, or names another identity than
// the caller's.
func TestNamespaceMoveRefusedAfterOwnBackups(t *testing.T) {
	now := time.Now()
	forged := func() []byte {
		var req wire.MoveRequest
		json.Unmarshal(signedMove(boxSign, "nBOX1", "nOTHER", now), &req)
		req.Statement, _ = json.Marshal(wire.MoveStatement{From: "nBOX1", To: "nNEW", Time: now})
		b, _ := json.Marshal(req)
		return b
	}
	for _, tc := range []struct {
		name  string
		own   bool // the new identity created its own repository first
		body  []byte
		want  int
		code  string
		words string
	}{
		{"own repository first", true, signedMove(boxSign, "nBOX1", "nNEW", now), 409, "exists", "its own repository"},
		{"statement altered after signing", false, forged(), 403, "forbidden", "not signed with the key"},
		{"signed by another key", false, signedMove(otherSign, "nBOX1", "nNEW", now), 403, "forbidden", "not signed with the key"},
		{"unsigned", false, []byte(`{"statement":{"from":"nBOX1","to":"nNEW","time":"` + now.Format(time.RFC3339) + `"}}`), 403, "forbidden", "not signed"},
		{"two hours old", false, signedMove(boxSign, "nBOX1", "nNEW", now.Add(-2*time.Hour)), 409, "stale", "within 1h0m0s"},
		{"two hours ahead", false, signedMove(boxSign, "nBOX1", "nNEW", now.Add(2*time.Hour)), 409, "stale", "within 1h0m0s"},
		{"names another identity", false, signedMove(boxSign, "nBOX1", "nBOX2", now), 403, "forbidden", "the caller is nNEW"},
		{"a namespace that does not exist", false, signedMove(boxSign, "nNONE", "nNEW", now), 404, "not_found", "no repository"},
		{"an escaping namespace", false, signedMove(boxSign, "../nBOX1", "nNEW", now), 400, "bad_name", "namespace"},
		{"unknown field", false, []byte(`{"statement":{},"signature":"","extra":1}`), 422, "malformed", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.createRepo("box:1")
			if tc.own {
				f.createRepo("newbox:1")
			}
			var p wire.Problem
			if code := f.do("newbox:1", "POST", "/v1/move", tc.body, &p); code != tc.want || p.Code != tc.code || !strings.Contains(p.Error, tc.words) {
				t.Errorf("got %d %q (%s); want %d %q with %q", code, p.Code, p.Error, tc.want, tc.code, tc.words)
			}
			if _, err := os.Stat(filepath.Join(f.dir, "moves.json")); !os.IsNotExist(err) {
				t.Errorf("moves.json exists (%v); want no move recorded", err)
			}
			if code := f.do("box:1", "GET", "/v1/wal", nil, nil); code != 200 {
				t.Errorf("the old identity: got %d; want 200, still its namespace", code)
			}
		})
	}
	t.Run("replayed", func(t *testing.T) {
		f := newFixture(t)
		f.createRepo("box:1")
		body := signedMove(boxSign, "nBOX1", "nNEW", now)
		if code := f.do("newbox:1", "POST", "/v1/move", body, nil); code != 200 {
			t.Fatalf("move: got %d; want 200", code)
		}
		// The namespace moves on; the first move's request is sent again.
		testPeers["third:1"] = tailnet.Peer{StableID: "nTHIRD", Node: "box", Tags: []string{"tag:clinicbox"}}
		t.Cleanup(func() { delete(testPeers, "third:1") })
		if code := f.do("third:1", "POST", "/v1/move", signedMove(boxSign, "nBOX1", "nTHIRD", now.Add(time.Minute)), nil); code != 200 {
			t.Fatalf("second move: got %d; want 200", code)
		}
		var p wire.Problem
		if code := f.do("newbox:1", "POST", "/v1/move", body, &p); code != 403 || !strings.Contains(p.Error, "moved on to identity nTHIRD") {
			t.Errorf("replayed by the first new identity: got %d %q; want 403", code, p.Error)
		}
		if code := f.do("third:1", "GET", "/v1/wal", nil, nil); code != 200 {
			t.Errorf("the namespace's writer after the replay: got %d; want 200 for nTHIRD", code)
		}
	})
}
