package vault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

var (
	boxSign   = testSigner // the key the fixture's repository names
	otherSign = signer.FromSeed(bytes.Repeat([]byte("o"), 32))
	logT0     = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
)

func keysOf(k *signer.Key) chain.Keys { return chain.Keys{Signer: k, Public: k.Public()} }

// custodyEntries makes n custody entries signed with k.
func custodyEntries(k *signer.Key, n int) []rotation.Entry {
	l := rotation.Continue(nil, keysOf(k))
	for i := range n {
		l.Append(rotation.Entry{Time: logT0.Add(time.Duration(i) * time.Hour), Drive: "A", Event: "insert", Who: "Maria", Decision: rotation.Accepted})
	}
	return l.Entries()
}

// batchOf is a batch of entries with the head signed by k at the last.
func batchOf(k *signer.Key, log string, entries []rotation.Entry) []byte {
	lb := wire.LogBatch{}
	for _, e := range entries {
		b, _ := json.Marshal(e)
		lb.Entries = append(lb.Entries, b)
	}
	if n := len(entries); n > 0 {
		lb.Head = chain.SignHead(keysOf(k), log, entries[n-1].Seq, entries[n-1].Hash, logT0.Add(24*time.Hour))
	}
	b, _ := json.Marshal(lb)
	return b
}

func (f *fixture) postLog(log string, body []byte) (int, wire.Problem, chain.Heads) {
	f.t.Helper()
	var raw json.RawMessage
	code := f.do("box:1", "POST", "/v1/logs/"+log, body, &raw)
	var p wire.Problem
	var hs chain.Heads
	if code == 200 {
		json.Unmarshal(raw, &hs)
	} else {
		json.Unmarshal(raw, &p)
	}
	return code, p, hs
}

// storedCustody reads the vault's copy of the custody log.
func (f *fixture) storedCustody() []rotation.Entry {
	f.t.Helper()
	file, err := os.Open(filepath.Join(f.dir, "boxes", "nBOX1", "logs", "custody.jsonl"))
	if err != nil {
		return nil
	}
	defer file.Close()
	entries, bad, err := rotation.ReadLog(file)
	if err != nil || len(bad) > 0 {
		f.t.Fatalf("stored custody log: %v %v", err, bad)
	}
	return entries
}

// The vault takes batches that chain on from what it holds, and its copy
// checks with the box's public key alone, against its own heads.
func TestLogChainContinues(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	all := custodyEntries(boxSign, 6)
	for _, tc := range []struct {
		name    string
		body    []byte
		want    int
		code    string
		holding int64
	}{
		{"the first batch", batchOf(boxSign, "custody", all[:3]), 200, "", 3},
		{"the same batch again (the answer was lost)", batchOf(boxSign, "custody", all[:3]), 200, "", 3},
		{"a batch after a gap", batchOf(boxSign, "custody", all[4:5]), 409, "gap", 3},
		{"a batch overlapping what the vault holds", batchOf(boxSign, "custody", all[1:5]), 200, "", 5},
		{"the next batch", batchOf(boxSign, "custody", all[5:]), 200, "", 6},
		{"a head of the other log", batchOf(boxSign, "audit", all[5:]), 422, "malformed", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, p, _ := f.postLog("custody", tc.body)
			if code != tc.want || p.Code != tc.code {
				t.Errorf("got %d %q (%s); want %d %q", code, p.Code, p.Error, tc.want, tc.code)
			}
			if got := f.storedCustody(); int64(len(got)) != tc.holding {
				t.Errorf("the vault holds %d entries; want %d", len(got), tc.holding)
			}
		})
	}
	var hs chain.Heads
	if code := f.do("support:1", "GET", "/v1/logs/heads?box=nBOX1", nil, &hs); code != 200 || len(hs.Heads) != 1 || hs.Heads[0].Seq != 6 {
		t.Fatalf("heads: got %d %+v; want 200 with the custody head at 6", code, hs)
	}
	for _, p := range rotation.Check(f.storedCustody(), chain.Keys{Public: boxSign.Public()}, hs.Heads) {
		t.Errorf("the vault's copy: %s", p)
	}
}

// The custody log is kept whole from entry 1; the audit log may start
// later (the box removes its oldest audit files).
func TestLogFirstBatch(t *testing.T) {
	dir := t.TempDir()
	al, err := audit.Open(filepath.Join(dir, "audit.jsonl"), keysOf(boxSign))
	if err != nil {
		t.Fatal(err)
	}
	var lb wire.LogBatch
	for i := range 3 {
		r, err := al.Append(audit.Record{Time: logT0, Caller: "lan:192.168.1.20", Role: "staff", Action: fmt.Sprintf("GET /api/status %d", i), Allowed: true})
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b, _ := json.Marshal(r)
			lb.Entries = append(lb.Entries, b)
			lb.Head = chain.SignHead(keysOf(boxSign), "audit", r.Seq, r.Hash, logT0)
		}
	}
	auditBatch, _ := json.Marshal(lb)
	for _, tc := range []struct {
		name, log string
		body      []byte
		want      int
	}{
		{"custody from entry 2", "custody", batchOf(boxSign, "custody", custodyEntries(boxSign, 3)[1:]), 422},
		{"custody from entry 1", "custody", batchOf(boxSign, "custody", custodyEntries(boxSign, 3)), 200},
		{"audit from record 2", "audit", auditBatch, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.createRepo("box:1")
			if code, p, _ := f.postLog(tc.log, tc.body); code != tc.want {
				t.Errorf("got %d %s; want %d", code, p.Error, tc.want)
			}
		})
	}
}

// Only the box's key is taken: a head or entries signed with another key,
// or a head altered after signing, store nothing.
func TestLogForgedRefused(t *testing.T) {
	own := custodyEntries(boxSign, 3)
	forgedHead := func() []byte {
		var lb wire.LogBatch
		json.Unmarshal(batchOf(boxSign, "custody", own), &lb)
		lb.Head.At = lb.Head.At.Add(time.Hour)
		b, _ := json.Marshal(lb)
		return b
	}
	unsignedTail := func() []byte {
		l := rotation.Continue(own, chain.Keys{})
		e := l.Append(rotation.Entry{Time: logT0, Drive: "A", Event: "remove", Decision: rotation.Accepted})
		var lb wire.LogBatch
		json.Unmarshal(batchOf(boxSign, "custody", append(own[:3:3], e)), &lb)
		b, _ := json.Marshal(lb)
		return b
	}
	for _, tc := range []struct {
		name  string
		first []byte // pins the box's key
		body  []byte
		want  string
	}{
		{"head by another key", batchOf(boxSign, "custody", own[:1]), batchOf(otherSign, "custody", own), "signed by another key"},
		{"entries and head by another key", batchOf(boxSign, "custody", own[:1]), batchOf(otherSign, "custody", custodyEntries(otherSign, 3)), "signed by another key"},
		{"head altered after signing", nil, forgedHead(), "forged signature"},
		{"an unsigned entry after signed ones", batchOf(boxSign, "custody", own), unsignedTail(), "not signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.createRepo("box:1")
			held := 0
			if tc.first != nil {
				if code, p, _ := f.postLog("custody", tc.first); code != 200 {
					t.Fatalf("first batch: got %d %s", code, p.Error)
				}
				held = len(f.storedCustody())
			}
			code, p, _ := f.postLog("custody", tc.body)
			if code != 422 || !strings.Contains(p.Error, tc.want) {
				t.Errorf("got %d %q; want 422 saying %q", code, p.Error, tc.want)
			}
			if got := len(f.storedCustody()); got != held {
				t.Errorf("the vault holds %d entries; want %d", got, held)
			}
		})
	}
}

// A box that sends a head older than the vault's (its log was cut, or an
// old copy of /perm restored) is refused with the vault's head.
func TestLogOlderHeadRefused(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	all := custodyEntries(boxSign, 5)
	if code, p, _ := f.postLog("custody", batchOf(boxSign, "custody", all)); code != 200 {
		t.Fatalf("got %d %s", code, p.Error)
	}
	rewritten := rotation.Continue(all[:3:3], keysOf(boxSign))
	rewritten.Append(rotation.Entry{Time: logT0, Drive: "B", Event: "insert", Decision: rotation.Accepted})
	rewritten.Append(rotation.Entry{Time: logT0, Drive: "B", Event: "remove", Decision: rotation.Accepted})
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"older head", batchOf(boxSign, "custody", all[:3])},
		{"same entry number, other history", batchOf(boxSign, "custody", rewritten.Entries()[3:])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, p, _ := f.postLog("custody", tc.body)
			if code != 409 || p.Code != "stale" || p.Head == nil || p.Head.Seq != 5 || p.Head.Hash != all[4].Hash {
				t.Errorf("got %d %q %+v; want 409 stale with the head at 5", code, p.Code, p.Head)
			}
		})
	}
}

// A batch is bounded, and so is each of its lines.
func TestLogBatchBounds(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	long := custodyEntries(boxSign, 1)[0]
	long.Reasons = []string{strings.Repeat("x", chain.MaxLine)}
	var many []rotation.Entry
	for len(many)*400 < 2*wire.MaxLogBatch {
		many = custodyEntries(boxSign, len(many)+1000)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want int
		code string
	}{
		{"batch over 1 MiB", batchOf(boxSign, "custody", many), 413, "too_large"},
		{"line over chain.MaxLine", batchOf(boxSign, "custody", []rotation.Entry{long}), 422, "malformed"},
		{"unknown field", []byte(`{"head":{},"entries":[],"more":1}`), 422, "malformed"},
		{"no entries", batchOf(boxSign, "custody", nil), 422, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, p, _ := f.postLog("custody", tc.body)
			if code != tc.want || p.Code != tc.code {
				t.Errorf("got %d %q (%s); want %d %q", code, p.Code, p.Error, tc.want, tc.code)
			}
		})
	}
	if code, _, _ := f.postLog("heads", batchOf(boxSign, "custody", many[:1])); code != 400 {
		t.Errorf("POST /v1/logs/heads: got %d; want 400", code)
	}
	if got := f.storedCustody(); len(got) != 0 {
		t.Errorf("the vault holds %d entries; want none", len(got))
	}
}

// The key the repository info names is the box's: a first head by another
// key pins nothing.
func TestLogKeyFromRepositoryInfo(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	f.nameSigner(boxSign)
	code, p, _ := f.postLog("custody", batchOf(otherSign, "custody", custodyEntries(otherSign, 2)))
	if code != 422 || !strings.Contains(p.Error, "signed by another key") {
		t.Errorf("got %d %q; want 422 signed by another key", code, p.Error)
	}
	if code, p, _ := f.postLog("custody", batchOf(boxSign, "custody", custodyEntries(boxSign, 2))); code != 200 {
		t.Errorf("the box's own: got %d %s; want 200", code, p.Error)
	}
}

// nameSigner makes the repository info name k as the box's signer, as a
// format 2 repository's does.
func (f *fixture) nameSigner(k *signer.Key) {
	f.t.Helper()
	p := filepath.Join(f.dir, "boxes", "nBOX1", "repo", "clinicbox-repo.json")
	var info map[string]any
	data, _ := os.ReadFile(p)
	if err := json.Unmarshal(data, &info); err != nil {
		f.t.Fatal(err)
	}
	info["signer"] = k.Public().String()
	data, _ = json.Marshal(info)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// An append the vault never acknowledged (it stopped mid-write) is cut,
// and the box's next batch continues.
func TestLogTornAppendCut(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	all := custodyEntries(boxSign, 4)
	f.postLog("custody", batchOf(boxSign, "custody", all[:2]))
	file := filepath.Join(f.dir, "boxes", "nBOX1", "logs", "custody.jsonl")
	torn, _ := json.Marshal(all[2])
	fh, _ := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	fh.Write(torn[:len(torn)/2])
	fh.Close()
	f.open()
	if code, p, _ := f.postLog("custody", batchOf(boxSign, "custody", all[2:])); code != 200 {
		t.Fatalf("got %d %s; want 200", code, p.Error)
	}
	if got := f.storedCustody(); len(got) != 4 {
		t.Errorf("the vault holds %d entries; want 4", len(got))
	}
}

// Who may read the logs: the box its own, support and the restore role any.
func TestLogReads(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	f.createRepo("box2:1")
	f.postLog("custody", batchOf(boxSign, "custody", custodyEntries(boxSign, 2)))
	for _, tc := range []struct {
		peer, target string
		want         int
	}{
		{"box:1", "/v1/logs/heads", 200},
		{"box:1", "/v1/logs/custody", 200},
		{"support:1", "/v1/logs/custody?box=nBOX1", 200},
		{"restore:1", "/v1/logs/heads?box=nBOX1", 200},
		{"box2:1", "/v1/logs/custody?box=nBOX1", 403},
		{"box2:1", "/v1/logs/custody", 404},
		{"laptop:1", "/v1/logs/heads?box=nBOX1", 403},
		{"support:1", "/v1/logs/other?box=nBOX1", 400},
	} {
		t.Run(fmt.Sprintf("%s %s", tc.peer, tc.target), func(t *testing.T) {
			if got := f.do(tc.peer, "GET", tc.target, nil, nil); got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
}
