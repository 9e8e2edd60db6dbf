package vault

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

func (v *Vault) routes() {
	m := http.NewServeMux()
	m.Handle("GET /v1/whoami", v.handle(StatusOnly, v.whoami))
	m.Handle("PUT /v1/repo", v.handle(Upload, v.putRepo))
	m.Handle("POST /v1/move", v.handle(Upload, v.move))
	m.Handle("GET /v1/wal", v.handle(Upload, v.getWAL))
	m.Handle("POST /v1/wal/begin", v.handle(Upload, v.beginWAL))
	m.Handle("POST /v1/wal/record", v.handle(Upload, v.putRecord))
	m.Handle("PUT /v1/wal/history/{tli}", v.handle(Upload, v.putHistory))
	m.Handle("PUT /v1/backups/{id}/meta", v.handle(Upload, v.putBackupMeta))
	m.Handle("GET /v1/backups/{id}", v.handle(Upload, v.getBackup))
	m.Handle("PUT /v1/backups/{id}/files/{name}", v.handle(Upload, v.putBackupFile))
	m.Handle("POST /v1/backups/{id}/commit", v.handle(Upload, v.commitBackup))
	m.Handle("GET /v1/files", v.handle(Read, v.listFiles))
	m.Handle("GET /v1/files/{path...}", v.handle(Read, v.getFile))
	m.Handle("GET /v1/status", v.handle(StatusOnly, v.status))
	m.Handle("POST /v1/logs/{log}", v.handle(Upload, v.postLog))
	m.Handle("GET /v1/logs/heads", v.handle(StatusOnly, v.getLogHeads))
	m.Handle("GET /v1/logs/{log}", v.handle(StatusOnly, v.getLog))
	v.mux = m
}

func (v *Vault) whoami(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	writeJSON(w, http.StatusOK, map[string]any{"node": c.peer.Node, "role": c.role, "namespace": c.ns})
	return action{name: "whoami", quiet: true}, nil
}

// putRepo creates the caller's repository, or checks that the stored one
// belongs to the same database system and keys.
func (v *Vault) putRepo(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	act := action{name: "repo.create", target: c.ns}
	var info archive.Info
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		return act, problem("malformed", "repository info: %v", err)
	}
	if info.SystemID == "" || info.SegmentSize < minSegment || info.SegmentSize > maxSegment || info.SegmentSize&(info.SegmentSize-1) != 0 {
		return act, problem("malformed", "repository info needs a system ID and a segment size of a power of two from 1 MiB to 1 GiB, as PostgreSQL allows; got %d", info.SegmentSize)
	}
	b, err := v.getBox(c.ns)
	if err != nil {
		return act, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	repo, err := archive.CreateStore(b.repoDir(), info)
	if err != nil {
		if errors.Is(err, archive.ErrOtherSystem) {
			return act, problem("exists", "%v", err)
		}
		return act, problem("malformed", "%v", err)
	}
	if b.repo == nil {
		b.repo = repo
		if err := b.load(); err != nil {
			return act, err
		}
	}
	if err := v.storeDescription(r.Context(), b); err != nil {
		return act, err
	}
	b.node = c.peer.Node
	writeJSON(w, http.StatusOK, b.position())
	return act, nil
}

// ownRepo is the caller's own namespace, which must hold a repository.
func (v *Vault) ownRepo(c *caller) (*box, error) {
	b, err := v.getBox(c.ns)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.repo == nil {
		return nil, problem("not_found", "no repository for %s yet; create it first (PUT /v1/repo)", c.peer.Node)
	}
	return b, nil
}

// readable is the namespace a read asks for: the caller's own, or with the
// Read role any namespace named by ?box= (or the only one there is).
func (v *Vault) readable(r *http.Request, c *caller) (*box, error) {
	ns := r.URL.Query().Get("box")
	switch {
	case ns == "" && c.role == Upload:
		ns = c.ns
	case ns == "":
		names, _ := v.namespaces()
		if len(names) != 1 {
			return nil, problem("not_found", "the vault holds %d repositories; name one with ?box= (see /v1/status)", len(names))
		}
		ns = names[0]
	case ns != c.ns && c.role != Read:
		return nil, problem("forbidden", "%s may read only its own repository", c.peer.Node)
	}
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	if err := v.current(r.Context(), ns); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(v.cfg.Dir, "boxes", ns)); err != nil {
		return nil, problem("not_found", "no repository in namespace %s", ns)
	}
	b, err := v.getBox(ns)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	has := b.repo != nil
	b.mu.Unlock()
	if !has {
		return nil, problem("not_found", "no repository in namespace %s", ns)
	}
	return b, nil
}

func (v *Vault) namespaces() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(v.cfg.Dir, "boxes"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if checkNamespace(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(v.cfg.Dir, "boxes", e.Name(), "repo", "clinicbox-repo.json")); err == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
