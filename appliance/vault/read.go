package vault

import (
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"io/fs"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// listFiles lists the repository's files for a restore that mirrors it:
// everything but temporary files, locks and uploads in progress.
func (v *Vault) listFiles(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	b, err := v.readable(r, c)
	if err != nil {
		return action{name: "files.list"}, err
	}
	act := action{name: "files.list", target: b.ns}
	b.mu.Lock()
	root := b.repo.Dir
	b.mu.Unlock()
	var out []wire.FileEntry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return nil // removed by retention meanwhile
			}
			out = append(out, wire.FileEntry{Path: filepath.ToSlash(rel), Size: fi.Size()})
		}
		return nil
	})
	if err != nil {
		return act, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	writeJSON(w, http.StatusOK, out)
	return act, nil
}

// getFile serves one file of the repository (ciphertext or plain
// metadata). Ranges are honoured, so an interrupted download resumes.
func (v *Vault) getFile(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	rel := r.PathValue("path")
	act := action{name: "files.read", target: rel, quiet: !strings.HasPrefix(rel, "backups/")}
	b, err := v.readable(r, c)
	if err != nil {
		return act, err
	}
	act.target = b.ns + "/" + rel
	if err := checkRepoPath(rel); err != nil {
		return act, err // checked by checkNames already; an empty path is not
	}
	f, err := b.root.Open(inRepo(filepath.FromSlash(rel)))
	if err != nil {
		return act, problem("not_found", "%s is not in the repository", rel)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return act, problem("not_found", "%s is not a file", rel)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, f)
	return act, nil
}
