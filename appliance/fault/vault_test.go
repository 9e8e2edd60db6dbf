package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
)

// tailVault is a vault served on a node of an in-process tailnet.
type tailVault struct {
	tn   *tailnettest.Tailnet
	dir  string
	url  string
	info archive.Info
	k    key
}

func newTailVault(t *testing.T) *tailVault {
	tn := tailnettest.New(t)
	node := tn.Node(t, "vault", "tag:vault")
	k := newKey(t)
	tv := &tailVault{tn: tn, dir: t.TempDir(), url: "http://vault:8443", k: k,
		info: archive.Info{Format: archive.FormatVersion, SystemID: "7300000000000000001", SegmentSize: 1 << 20, ServerVersion: 150000,
			Recipients: []string{k.recipient}, Signer: testSigner.Public().String()}}
	serveVault(t, node, tv.dir)
	return tv
}

// serveVault serves a vault storing into dir on node at :8443.
func serveVault(t *testing.T, node *tailnet.Node, dir string) {
	v, err := vault.New(vault.Config{Dir: dir}, node, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := node.Listen(":8443")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: v}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); v.Close() })
}

// call sends one request from a node and returns the status and problem.
func call(t *testing.T, n *tailnet.Node, method, url string, body []byte) (int, wire.Problem) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p wire.Problem
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &p)
	return resp.StatusCode, p
}

// Uploads to the vault over the tailnet that are malformed, replayed, out
// of order or from peers without the box's tag: each is refused with its
// reason, and the vault's copy stays exactly what the box sent.
func TestVaultHostileUploads(t *testing.T) {
	tv := newTailVault(t)
	box := tv.tn.Node(t, "box", "tag:clinicbox")
	info, _ := json.Marshal(tv.info)
	if code, p := call(t, box, "PUT", tv.url+"/v1/repo", info); code != 200 {
		t.Fatalf("create repository: %d %+v", code, p)
	}
	sealer, err := archive.NewWALSealer(tv.info, testSigner)
	if err != nil {
		t.Fatal(err)
	}
	wal := bytes.Repeat([]byte("clinic WAL "), 200)[:2000]
	rec := func(off int, data []byte) []byte {
		r, err := sealer.Record(1, 0, off, data)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	recURL := func(seg, off, n int) string {
		return fmt.Sprintf("%s/v1/wal/record?tli=1&seg=%d&offset=%d&length=%d", tv.url, seg, off, n)
	}
	call(t, box, "POST", tv.url+"/v1/wal/begin?tli=1&lsn=0", nil)
	if code, p := call(t, box, "POST", recURL(0, 0, 1000), rec(0, wal[:1000])); code != 200 {
		t.Fatalf("first record: %d %+v", code, p)
	}
	next := rec(1000, wal[1000:1010])
	for _, tc := range []struct {
		name, url string
		body      []byte
		code      string
	}{
		{"WAL record replayed", recURL(0, 0, 1000), rec(0, wal[:1000]), "replayed"},
		{"WAL record overlapping what is stored", recURL(0, 500, 1000), rec(500, wal[500:1500]), "overlap"},
		{"WAL record after a gap", recURL(0, 2000, 10), rec(2000, wal[:10]), "gap"},
		{"WAL record not sealed", recURL(0, 1000, 10), append([]byte{0, 0, 0, 10}, wal[:10]...), "malformed"},
		{"WAL record with a lying length prefix", recURL(0, 1000, 10), append([]byte{0, 0, 0, 1}, next[4:]...), "malformed"},
		{"WAL record past the segment's end", recURL(0, 1000, 1<<20), next, "malformed"},
		{"WAL record far larger than its length", recURL(0, 1000, 1), append(next, make([]byte, 20000)...), "malformed"},
		{"repository info that is not JSON", tv.url + "/v1/repo", []byte("\x00{"), "malformed"},
		{"repository of another database system", tv.url + "/v1/repo", bytes.Replace(info, []byte("7300000000000000001"), []byte("7300000000000000002"), 1), "exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTry(t, "malformed or replayed uploads to the vault (over the tailnet)")
			method := "POST"
			if tc.url == tv.url+"/v1/repo" {
				method = "PUT"
			}
			code, p := call(t, box, method, tc.url, tc.body)
			if code < 400 || code >= 500 || p.Code != tc.code {
				t.Fatalf("got %d %q (%s); want a refusal %q", code, p.Code, p.Error, tc.code)
			}
			tr.Outcome = "refused (409 or 422) with the reason (replayed, overlap, gap, malformed, exists); the vault's copy is unchanged"
		})
	}
	tv.peersRefused(t)
	tv.holdsExactly(t, box, wal[:1000])
}

// peersRefused tries the upload and read endpoints from peers without the
// box's tag, over the tailnet.
func (tv *tailVault) peersRefused(t *testing.T) {
	info, _ := json.Marshal(tv.info)
	for _, p := range []struct{ name, tag string }{{"stranger", ""}, {"printer", "tag:other"}, {"support", "tag:support"}} {
		var tags []string
		if p.tag != "" {
			tags = []string{p.tag}
		}
		n := tv.tn.Node(t, p.name, tags...)
		for i, r := range []struct{ method, path string }{{"PUT", "/v1/repo"}, {"POST", "/v1/wal/record?tli=1&seg=0&offset=1000&length=10"}, {"GET", "/v1/files"}} {
			t.Run(p.name+" "+r.method+" "+r.path, func(t *testing.T) {
				tr := newTry(t, "peers without the right tailnet tags (untagged, another tag, support)")
				if code, pr := call(t, n, r.method, tv.url+r.path, info); code != 403 {
					t.Fatalf("got %d %+v; want 403", code, pr)
				}
				refused := tv.audited(t, 403)
				if refused[p.name] != i+1 {
					t.Fatalf("the vault's audit log holds %d refusals of %s; want %d", refused[p.name], p.name, i+1)
				}
				tr.Outcome = "refused with 403 and audited; nothing stored or read"
			})
		}
	}
}

// audited counts the audit log's entries with the given status by node.
func (tv *tailVault) audited(t *testing.T, status int) map[string]int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(tv.dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var e vault.AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e.Status == status {
			out[strings.SplitN(e.Node, ".", 2)[0]]++
		}
	}
	return out
}

// holdsExactly checks that the box's namespace holds exactly want as
// timeline 1's WAL, whatever was thrown at it.
func (tv *tailVault) holdsExactly(t *testing.T, box *tailnet.Node, want []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", tv.url+"/v1/wal", nil)
	resp, err := box.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pos wire.Position
	json.NewDecoder(resp.Body).Decode(&pos)
	resp.Body.Close()
	if pos.Durable != archive.LSN(len(want)) || pos.Timeline != 1 {
		t.Errorf("the vault says its WAL ends at %s on timeline %d; want %d bytes on timeline 1", pos.Durable, pos.Timeline, len(want))
	}
	names, _ := filepath.Glob(filepath.Join(tv.dir, "boxes", "*", "repo"))
	if len(names) != 1 {
		t.Fatalf("the vault holds %d repositories; want the box's only", len(names))
	}
	repo, err := archive.OpenFirstUse(names[0])
	if err != nil {
		t.Fatal(err)
	}
	sd, err := repo.ReadSegment(1, 0, tv.k.ids)
	if err != nil {
		t.Fatalf("the vault's segment: %v", err)
	}
	if int(sd.Valid) != len(want) || !bytes.Equal(sd.Data[:sd.Valid], want) {
		t.Errorf("the vault's segment reads back %d bytes, not the %d the box sent", sd.Valid, len(want))
	}
}
