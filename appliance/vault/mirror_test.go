package vault

import (
	"context"
	"encoding/json"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// shippingVault serves the vault's read API for a repository whose box is
// shipping: the first read of the partial segment finds it completed and
// gone, as happens when a restore mirrors while WAL still arrives.
type shippingVault struct {
	mu      sync.Mutex
	files   map[string]string
	fetched []string
}

func (v *shippingVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r.URL.Path == "/v1/files" {
		var list []wire.FileEntry
		for p, body := range v.files {
			list = append(list, wire.FileEntry{Path: p, Size: int64(len(body))})
		}
		slices.SortFunc(list, func(a, b wire.FileEntry) int { return strings.Compare(a.Path, b.Path) })
		json.NewEncoder(w).Encode(list)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v1/files/")
	v.fetched = append(v.fetched, p)
	const partial = "wal/000000010000000000000003.partial.age"
	if p == partial {
		if _, ok := v.files[partial]; ok && !slices.Contains(v.fetched[:len(v.fetched)-1], partial) {
			// The segment completes between the listing and this read.
			delete(v.files, partial)
			v.files["wal/000000010000000000000003.age"] = "whole segment 3"
			v.files["wal/000000010000000000000004.partial.age"] = "segment 4 so far"
			v.files["wal/state.json"] = `{"flushed":"0/4000010"}`
		}
	}
	body, ok := v.files[p]
	if !ok {
		http.Error(w, `{"error":"not in the repository"}`, http.StatusNotFound)
		return
	}
	w.Write([]byte(body))
}

func TestMirrorWhileTheBoxShips(t *testing.T) {
	v := &shippingVault{files: map[string]string{
		"info.json":                                `{"segment_size":16777216}`,
		"wal/000000010000000000000002.age":         "whole segment 2",
		"wal/000000010000000000000003.partial.age": "segment 3 so far",
		"wal/state.json":                           `{"flushed":"0/3000100"}`,
	}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	dir := t.TempDir()
	// A partial segment left from an earlier mirror, completed since.
	stale := filepath.Join(dir, "wal", "000000010000000000000001.partial.age")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("old"), 0o644)

	if _, _, err := Mirror(context.Background(), srv.Client(), srv.URL, "", dir); err != nil {
		t.Fatalf("Mirror: %v", err)
	}
	got := filesUnder(t, dir)
	want := []string{"info.json", "wal/000000010000000000000002.age", "wal/000000010000000000000003.age", "wal/000000010000000000000004.partial.age", "wal/state.json"}
	if !slices.Equal(got, want) {
		t.Errorf("mirrored %q; want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "wal", "state.json")); !strings.Contains(string(b), "0/4000010") {
		t.Errorf("state.json = %s; want the state after the segment completed", b)
	}
	// In every round the state is read before any partial segment.
	stateAt, partialAt := -1, -1
	for i, p := range v.fetched {
		switch {
		case p == "wal/state.json":
			stateAt = i
		case strings.HasSuffix(p, ".partial.age"):
			partialAt = i
			if stateAt < 0 || stateAt > partialAt {
				t.Errorf("fetched %q: a partial segment before the state that describes it", v.fetched)
			}
			stateAt = -1
		}
	}
}

// A vault that lists a path leading out of the repository gets nothing
// written there.
func TestMirrorRefusesPathsOutside(t *testing.T) {
	v := &shippingVault{files: map[string]string{"../escaped": "x", "info.json": "{}"}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	top := t.TempDir()
	dir := filepath.Join(top, "cache")
	_, _, err := Mirror(context.Background(), srv.Client(), srv.URL, "", dir)
	if err == nil || !strings.Contains(err.Error(), "outside the repository") {
		t.Errorf("Mirror: %v; want a refusal naming the path", err)
	}
	if _, err := os.Stat(filepath.Join(top, "escaped")); err == nil {
		t.Error("a file was written outside the mirror's directory")
	}
}
