package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
	q := ""
	if ns != "" {
		q = "?box=" + url.QueryEscape(ns)
	}
	base := strings.TrimSuffix(baseURL, "/")
	var list []FileEntry
	if err := getJSON(ctx, hc, base+"/v1/files"+q, &list); err != nil {
		return 0, 0, err
	}
	var files int
	var bytes int64
	for _, f := range list {
		local := filepath.Join(dir, filepath.FromSlash(f.Path))
		if !strings.Contains(f.Path, "..") && keep(local, f) {
			continue
		}
		n, err := fetchFile(ctx, hc, base+"/v1/files/"+f.Path+q, local)
		if err != nil {
			return files, bytes, err
		}
		files++
		bytes += n
	}
	return files, bytes, nil
}

// keep reports whether a mirrored file is already complete.
func keep(local string, f FileEntry) bool {
	if strings.HasSuffix(f.Path, ".partial.age") || strings.HasSuffix(f.Path, "state.json") || strings.HasSuffix(f.Path, "verify.json") {
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
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var p Problem
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
