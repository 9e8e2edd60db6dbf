package vault

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// putBackupFile appends a chunk at the file's durable end. The chunk is
// streamed to a spool file first (see spool), so neither its size nor a
// stalled sender holds memory or the box's lock.
func (v *Vault) putBackupFile(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	id, name := r.PathValue("id"), r.PathValue("name")
	act := action{name: "backup.file", target: id + "/" + name, quiet: true}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	rel := filepath.Join(stagingRel(id), name)
	b.mu.Lock()
	m, err := b.readMeta(id)
	have := b.stagedSize(rel)
	b.mu.Unlock()
	if err != nil {
		return act, err
	}
	size, sum, ok := expected(m, name)
	if !ok {
		return act, problem("malformed", "backup %s: %q is not a file of this backup", id, name)
	}
	limit := size
	if size < 0 {
		limit = maxExtra
	}
	off := parseOffset(r)
	if off != have {
		return act, offsetGap(id, name, have, r.URL.Query().Get("offset"))
	}
	tooBig := problem("mismatch", "backup %s: %s would grow past its size of %d bytes", id, name, limit)
	if r.ContentLength > limit-off {
		return act, tooBig
	}
	chunk, err := b.spool(r.Body, limit-off)
	if errors.Is(err, errTooBig) {
		return act, tooBig
	}
	if err != nil {
		return act, err
	}
	defer chunk.close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if have = b.stagedSize(rel); off != have { // another request moved it meanwhile
		return act, offsetGap(id, name, have, r.URL.Query().Get("offset"))
	}
	if have+chunk.size > limit {
		return act, tooBig
	}
	if err := b.fits(chunk.size); err != nil {
		return act, err
	}
	if err := b.appendSync(rel, os.O_WRONLY|os.O_CREATE|os.O_APPEND, chunk.reader(), chunk.size); err != nil {
		return act, err
	}
	if have+chunk.size == size {
		if err := checkHash(b, rel, sum); err != nil {
			b.discard(rel)
			return act, err
		}
		act.quiet = false // audit each completed file
	}
	return act, v.writeProgress(w, b, id)
}

// commitBackup checks every file against backup.json once more, writes the
// vault's arrival record and makes the backup visible by renaming its
// directory into place.
func (v *Vault) commitBackup(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	id := r.PathValue("id")
	act := action{name: "backup.commit", target: id}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.root.Stat(backupRel(id)); err == nil {
		return act, v.writeProgress(w, b, id) // committed before; the answer was lost
	}
	m, err := b.readMeta(id)
	if err != nil {
		return act, err
	}
	a, err := b.arrive(m, c.peer.Node, v.cfg.Now())
	if err != nil {
		return act, err
	}
	if err := b.writeArrival(a); err != nil {
		return act, err
	}
	dir := stagingRel(id)
	if err := b.syncDir(dir); err != nil {
		return act, fmt.Errorf("vault: commit backup %s: %w", id, err)
	}
	if err := b.root.Rename(dir, backupRel(id)); err != nil {
		return act, fmt.Errorf("vault: commit backup %s: %w", id, err)
	}
	if err := b.syncDir(filepath.Dir(dir)); err != nil {
		return act, fmt.Errorf("vault: commit backup %s: %w", id, err)
	}
	b.node = c.peer.Node
	return act, v.writeProgress(w, b, id)
}

// arrive checks a staged backup's files as they arrived and its claims
// against what the vault holds, and returns the arrival record. b.mu is
// held.
func (b *box) arrive(m *archive.Backup, node string, now time.Time) (*Arrival, error) {
	dir := stagingRel(m.ID)
	if err := b.checkParent(m); err != nil {
		return nil, err
	}
	a := &Arrival{ID: m.ID, Time: now.UTC(), Node: node, WAL: b.position(), Parent: m.Parent,
		Claimed: Span{Timeline: m.Timeline, Start: m.StartLSN, EndTimeline: m.EndTimeline, End: m.EndLSN}}
	for _, f := range m.Files {
		rel := filepath.Join(dir, f.Name)
		if b.stagedSize(rel) != f.Size {
			return nil, problem("mismatch", "backup %s: %s is not complete", m.ID, f.Name)
		}
		if err := checkHash(b, rel, f.SHA256); err != nil {
			b.discard(rel)
			return nil, err
		}
		a.Files = append(a.Files, ArrivedFile{Name: f.Name, Size: f.Size, SHA256: f.SHA256})
	}
	sealed, err := b.root.ReadFile(filepath.Join(dir, "backup.json.age"))
	if err != nil || !bytes.HasPrefix(sealed, ageMagic) {
		return nil, problem("mismatch", "backup %s: backup.json.age (the sealed copy of backup.json) is missing or not an age file", m.ID)
	}
	b.confirm(a, now)
	return a, nil
}
