package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// boxAndSupport identifies the box and the support machine by address.
type boxAndSupport struct{}

func (boxAndSupport) WhoIs(_ context.Context, addr string) (tailnet.Peer, error) {
	switch addr {
	case "box:1":
		return tailnet.Peer{StableID: "nBOX", Node: "box", Tags: []string{"tag:clinicbox"}}, nil
	case "support:1":
		return tailnet.Peer{StableID: "nSUP", Node: "support", Tags: []string{"tag:support"}}, nil
	}
	return tailnet.Peer{}, errors.New("unknown peer")
}

// The vault's heads, as GET /v1/logs/heads answers them, are an anchor
// as they are: a log on the box cut after the vault took it is caught,
// and the vault's own copy verifies.
func TestCustodyVerifyAgainstVaultHeads(t *testing.T) {
	v, err := vault.New(vault.Config{Dir: t.TempDir()}, boxAndSupport{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	call := func(peer, method, target string, body []byte) []byte {
		t.Helper()
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		r.RemoteAddr = peer
		w := httptest.NewRecorder()
		v.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s %s: got %d %s", method, target, w.Code, w.Body)
		}
		return w.Body.Bytes()
	}
	id, _ := age.GenerateX25519Identity()
	info, _ := json.Marshal(archive.Info{SystemID: "7300000000000000001", SegmentSize: 1 << 20, Recipients: []string{id.Recipient().String()}})
	call("box:1", "PUT", "/v1/repo", info)

	box := signer.FromSeed(bytes.Repeat([]byte("b"), 32))
	keys := chain.Keys{Signer: box, Public: box.Public()}
	log := rotation.Continue(nil, keys)
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for i := range 5 {
		log.Append(rotation.Entry{Time: t0.Add(time.Duration(i) * time.Hour), Drive: "A", Event: "insert", Who: "Maria", Decision: rotation.Accepted})
	}
	entries := log.Entries()
	batch := wire.LogBatch{Head: chain.SignHead(keys, "custody", entries[4].Seq, entries[4].Hash, t0.Add(5*time.Hour))}
	for _, e := range entries {
		b, _ := json.Marshal(e)
		batch.Entries = append(batch.Entries, b)
	}
	body, _ := json.Marshal(batch)
	call("box:1", "POST", "/v1/logs/custody", body)

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	heads := write("vault-heads.json", call("support:1", "GET", "/v1/logs/heads?box=nBOX", nil))
	copied := write("vault-custody.jsonl", call("support:1", "GET", "/v1/logs/custody?box=nBOX", nil))
	var cut bytes.Buffer
	rotation.WriteEntries(&cut, entries[:3]...)
	onBox := write("custody.jsonl", cut.Bytes())
	key := box.Public().String()
	for _, tc := range []struct {
		name string
		file string
		ok   bool
		want string
	}{
		{"the box's log, cut", onBox, false, "FAULT truncated: truncated after entry 3"},
		{"the vault's copy", copied, true, "VERDICT: the custody log (5 entries, 1 to 5) verifies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runCustody(context.Background(), []string{"verify", "--key", key, "--anchor", heads, tc.file}, &out, &errOut)
			if (err == nil) != tc.ok || !strings.Contains(out.String(), tc.want) {
				t.Errorf("got %v:\n%s%s\nwant ok %t and %q", err, out.String(), errOut.String(), tc.ok, tc.want)
			}
		})
	}
}
