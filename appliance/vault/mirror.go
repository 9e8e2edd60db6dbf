package vault

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Mirror copies a box's repository from the vault at baseURL into dir, so
// that a restore and its wal-fetch read a local repository (recovery then
// never waits on the network between segments). ns names the box's
// namespace; empty means the caller's own, or the only one. Files already
// mirrored with the same size are kept, so an interrupted mirror resumes;
// files that grow (the partial segment, wal/state.json) are fetched again.
// It returns the number of files and bytes fetched.
func Mirror(ctx context.Context, hc *http.Client, baseURL, ns, dir string) (int, int64, error) {
	return MirrorWhere(ctx, hc, baseURL, ns, dir, nil)
}

// MirrorWhere is Mirror of only the files want accepts (by path relative
// to the repository, with forward slashes); nil wants all.
func MirrorWhere(ctx context.Context, hc *http.Client, baseURL, ns, dir string, want func(string) bool) (int, int64, error) {
	m := newMirror(hc, baseURL, ns, dir)
	m.want = want
	// A box may ship while this runs: a partial segment listed a moment
	// ago may be complete now and gone. Listing again finds the segment.
	for attempt := 1; ; attempt++ {
		vanished, err := m.pass(ctx, attempt < 5)
		if err != nil || !vanished {
			return m.files, m.bytes, err
		}
	}
}

// List returns the files of a box's repository on the vault.
func List(ctx context.Context, hc *http.Client, baseURL, ns string) ([]wire.FileEntry, error) {
	m := newMirror(hc, baseURL, ns, "")
	var list []wire.FileEntry
	err := getJSON(ctx, m.hc, m.base+"/v1/files"+m.q, &list)
	return list, err
}

func newMirror(hc *http.Client, baseURL, ns, dir string) *mirror {
	m := &mirror{hc: hc, base: strings.TrimSuffix(baseURL, "/"), dir: dir}
	if ns != "" {
		m.q = "?box=" + url.QueryEscape(ns)
	}
	return m
}

// mirror is one Mirror's progress.
type mirror struct {
	hc           *http.Client
	base, q, dir string
	want         func(string) bool
	files        int
	bytes        int64
}

// pass lists the vault's files and fetches those not mirrored yet. With
// retry, a partial segment gone since the listing is left for the next
// pass, and vanished reports it.
func (m *mirror) pass(ctx context.Context, retry bool) (vanished bool, err error) {
	var list []wire.FileEntry
	if err := getJSON(ctx, m.hc, m.base+"/v1/files"+m.q, &list); err != nil {
		return false, err
	}
	// The files that change in place come first: what wal/state.json
	// says was stored must be in the partial segment fetched after it,
	// never the other way round.
	slices.SortStableFunc(list, func(a, b wire.FileEntry) int {
		return cmp.Compare(rank(a.Path), rank(b.Path))
	})
	listed := map[string]bool{}
	for _, f := range list {
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return false, fmt.Errorf("vault: the vault listed %q, outside the repository: refusing to mirror it", f.Path)
		}
		local := filepath.Join(m.dir, filepath.FromSlash(f.Path))
		listed[local] = true
		if keep(local, f) || m.want != nil && !m.want(f.Path) {
			continue
		}
		n, err := fetchFile(ctx, m.hc, m.base+"/v1/files/"+f.Path+m.q, local)
		if errors.Is(err, errGone) && rank(f.Path) == growing && retry {
			vanished = true
			continue
		}
		if err != nil {
			return false, err
		}
		m.files++
		m.bytes += n
	}
	return vanished, dropStalePartials(m.dir, listed)
}

// partialSegment ends the name of a segment still being written.
const partialSegment = ".partial.age"

// What a repository file does over time, in the order a mirror fetches
// them.
const (
	rewritten = iota // metadata rewritten in place: wal/state.json, verify.json
	growing          // a partial segment
	settled          // written once, never changed
)

func rank(path string) int {
	switch {
	case strings.HasSuffix(path, "state.json") || strings.HasSuffix(path, "verify.json"):
		return rewritten
	case strings.HasSuffix(path, partialSegment):
		return growing
	}
	return settled
}

// dropStalePartials removes mirrored partial segments the vault no longer
// lists (completed since an earlier mirror), so that the mirror holds what
// the vault holds.
func dropStalePartials(dir string, listed map[string]bool) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, partialSegment) || listed[p] {
			return err
		}
		return os.Remove(p)
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: mirror: %w", err)
	}
	return nil
}

// errGone is a file the vault listed but no longer has.
var errGone = errors.New("no longer on the vault")

// keep reports whether a mirrored file is already complete.
func keep(local string, f wire.FileEntry) bool {
	if rank(f.Path) != settled {
		return false
	}
	fi, err := os.Stat(local)
	return err == nil && fi.Size() == f.Size
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	resp, err := get(ctx, hc, u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("vault: %s: %w", u, err)
	}
	return nil
}

func get(ctx context.Context, hc *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound && strings.Contains(u, "/v1/files/") {
		resp.Body.Close()
		return nil, fmt.Errorf("vault: %s: %w", u, errGone)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var p wire.Problem
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(body, &p) != nil || p.Error == "" {
			p.Error = strings.TrimSpace(string(body))
		}
		return nil, fmt.Errorf("vault: %s: %s (%d)", u, p.Error, resp.StatusCode)
	}
	return resp, nil
}

// fetchFile downloads to a temporary file and renames it into place.
func fetchFile(ctx context.Context, hc *http.Client, u, local string) (int64, error) {
	resp, err := get(ctx, hc, u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return 0, fmt.Errorf("vault: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), ".fetch-")
	if err != nil {
		return 0, fmt.Errorf("vault: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), local)
	}
	if err != nil {
		return n, fmt.Errorf("vault: fetch %s: %w", u, err)
	}
	return n, nil
}
