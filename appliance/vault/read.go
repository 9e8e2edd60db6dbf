package vault

import (
	"net/http"
	"path/filepath"
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
	out, err := repoFiles(root)
	if err == nil {
		out, err = b.withEvicted(out)
	}
	if err != nil {
		return act, err
	}
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
		if served, err := v.serveEvicted(w, r, b, rel); served || err != nil {
			return act, err
		}
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
