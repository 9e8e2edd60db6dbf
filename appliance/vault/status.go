package vault

import (
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"net/http"
	"os"
	"path/filepath"
)

// Status reports every namespace, from file names and metadata alone.
func (v *Vault) Status() (wire.Status, error) {
	st := wire.Status{Time: v.cfg.Now().UTC(), Boxes: []wire.BoxStatus{}}
	names, err := v.namespaces()
	if err != nil {
		return st, err
	}
	for _, ns := range names {
		b, err := v.getBox(ns)
		if err != nil {
			return st, err
		}
		bs := b.status()
		if sb := v.cfg.Standbys[ns]; sb != nil {
			s := sb.Status()
			bs.Standby = &s
		}
		st.Boxes = append(st.Boxes, bs)
	}
	return st, nil
}

func (b *box) status() wire.BoxStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := wire.BoxStatus{Namespace: b.ns, Node: b.node, LastWAL: b.lastWAL}
	if b.repo == nil {
		return s
	}
	s.SystemID = b.repo.Info.SystemID
	if p := b.position(); p.Exists {
		s.Timeline, s.Durable = p.Timeline, p.Durable
	}
	if s.LastWAL.IsZero() {
		if ws, ok := b.repo.WALState(); ok {
			s.LastWAL = ws.Time
		}
	}
	if done, _, err := b.repo.Backups(); err == nil {
		s.Backups = len(done)
		if len(done) > 0 {
			s.LatestBackup = done[len(done)-1].ID
		}
	}
	filepath.Walk(b.repo.Dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			s.StoredBytes += fi.Size()
		}
		return nil
	})
	return s
}

// status serves the status document: every namespace to support and
// restore machines, its own to a box.
func (v *Vault) status(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	act := action{name: "status"}
	st, err := v.Status()
	if err != nil {
		return act, err
	}
	if c.role == Upload {
		own := st.Boxes[:0]
		for _, b := range st.Boxes {
			if b.Namespace == c.ns {
				own = append(own, b)
			}
		}
		st.Boxes = own
	}
	writeJSON(w, http.StatusOK, st)
	return act, nil
}
