package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// The vault's directory is the journal; Offload copies it into object
// storage (Config.Bucket), laid out by namespace as the repository is:
// committed backups as multipart uploads committed by their backup.json,
// complete WAL segments as one object each, the segment being filled as
// batches of what it gained since the last call, and every other file
// whole. A box's acknowledgement still means "fsynced on the vault
// node"; the bucket lags it by the interval between calls. No lock is
// held while objects are written: only the current segment's durable
// size is read under the box's lock.

// Offload copies every namespace into the bucket; it does nothing
// without one. A namespace that fails is reported and the others still
// go.
func (v *Vault) Offload(ctx context.Context) error {
	if v.cfg.Bucket == nil {
		return nil
	}
	return errors.Join(v.eachBox(ctx, "offload", v.offloadBox), v.offloadAudit(ctx))
}

// eachBox runs op on every namespace; one that fails is reported and the
// others still go.
func (v *Vault) eachBox(ctx context.Context, what string, op func(context.Context, *box) error) error {
	names, err := v.namespaces()
	if err != nil {
		return fmt.Errorf("vault: %s: %w", what, err)
	}
	var errs []error
	for _, ns := range names {
		b, err := v.getBox(ns)
		if err == nil {
			err = op(ctx, b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("vault: %s %s: %w", what, ns, err))
		}
	}
	return errors.Join(errs...)
}

// offloadBox copies what changed in one namespace's repository since the
// last pass. With leases it writes only a namespace this node holds, and
// renews the lease first, so an idle box costs no request at all.
func (v *Vault) offloadBox(ctx context.Context, b *box) error {
	p, err := v.planOffload(b)
	if err != nil {
		return err
	}
	logs := logFiles(b)
	logsChanged, logStamps := v.changed(b, logs, "")
	if p.empty() && !anyChanged(logsChanged) {
		return nil
	}
	if ok, err := v.fence(ctx, b.ns); !ok {
		b.mu.Lock()
		b.pruned = append(p.pruned, b.pruned...)
		b.mu.Unlock()
		return err // another node writes the namespace, or the lease could not be renewed
	}
	ctx, cancel := v.writeDeadline(ctx, b.ns)
	defer cancel()
	if err := v.offloadRepo(ctx, b, p); err != nil {
		return err
	}
	if err := v.offloadLogs(ctx, b, logs, logsChanged); err != nil {
		return err
	}
	v.remember(b, logStamps)
	return nil
}

// offloadRepo stores what changed in the repository, as planned.
func (v *Vault) offloadRepo(ctx context.Context, b *box, p *offloadPlan) error {
	if err := v.unload(ctx, b, p.pruned); err != nil {
		return err
	}
	if err := v.offloadBackups(ctx, b, changedBackups(p.files, p.changed)); err != nil {
		return err
	}
	for _, f := range p.files {
		if _, ok := backupOf(f.Path); ok || !p.changed[f.Path] || f.Path == bucket.LeaseName {
			continue // a lease copy left by an older rehydration never replaces the live one
		}
		raw := int64(-1)
		if f.Path == p.g.rel {
			f.Size, raw = p.g.size, p.g.raw // what the index acknowledged, not a record being appended
		}
		if err := v.offloadFile(ctx, b, f, raw); err != nil {
			return err
		}
	}
	if err := v.offloadIndexes(ctx, b); err != nil {
		return err
	}
	v.remember(b, p.stamps)
	return nil
}

// offloadPlan is what one pass has to do for a namespace.
type offloadPlan struct {
	g       growth
	pruned  []string
	files   []wire.FileEntry
	changed map[string]bool
	stamps  map[string]stamp
}

// planOffload finds what changed since the last pass; it takes the list
// of what retention removed.
func (v *Vault) planOffload(b *box) (*offloadPlan, error) {
	b.mu.Lock()
	p := &offloadPlan{g: b.growing(), pruned: b.pruned}
	b.pruned = nil
	b.mu.Unlock()
	files, err := repoFiles(b.repoDir())
	if err != nil {
		b.mu.Lock()
		b.pruned = append(p.pruned, b.pruned...)
		b.mu.Unlock()
		return nil, err
	}
	p.files = files
	p.changed, p.stamps = v.changed(b, files, "repo")
	if cur := p.g.rel; cur != "" {
		// The growing file's stamp is the one taken with its size under
		// the lock: a stat taken later could include records that
		// completed the segment after the size was read, and the
		// complete segment would then never be stored whole.
		p.stamps[cur] = p.g.stamp
		p.changed[cur] = v.stampOf(b, cur) != p.g.stamp
	}
	return p, nil
}

// empty reports whether the pass has nothing to write.
func (p *offloadPlan) empty() bool {
	if len(p.pruned) > 0 {
		return false
	}
	return !anyChanged(p.changed)
}

// anyChanged reports whether any file in changed is marked changed.
func anyChanged(changed map[string]bool) bool {
	for _, c := range changed {
		if c {
			return true
		}
	}
	return false
}

// indexKey is where a segment's index goes in the bucket, beside the
// repository's files: what Rehydrate needs to know a complete segment is
// complete.
const indexKey = "vault-index"

// offloadIndexes stores the indexes of complete segments (the index of
// the segment being filled changes with every record; that segment is
// sent again after a rehydration).
func (v *Vault) offloadIndexes(ctx context.Context, b *box) error {
	b.mu.Lock()
	current := ""
	if b.have {
		current = filepath.Base(indexRel(b.cur.tli, b.cur.seg))
	}
	b.mu.Unlock()
	ents, err := fs.ReadDir(b.root.FS(), indexDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var files []wire.FileEntry
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && e.Type().IsRegular() && e.Name() != current {
			files = append(files, wire.FileEntry{Path: path.Join(indexDir, e.Name()), Size: fi.Size()})
		}
	}
	changed, stamps := v.changed(b, files, "")
	for _, f := range files {
		if !changed[f.Path] {
			continue
		}
		data, err := b.root.ReadFile(f.Path)
		if err != nil {
			return err
		}
		if err := v.cfg.Bucket.PutFile(ctx, b.ns, path.Join(indexKey, path.Base(f.Path)), bytes.NewReader(data), int64(len(data))); err != nil {
			return err
		}
	}
	v.remember(b, stamps)
	return nil
}

// unload removes from the bucket what retention removed from the
// directory; what fails (an object still under Object Lock, the server
// down) is tried again on the next pass.
func (v *Vault) unload(ctx context.Context, b *box, pruned []string) error {
	for i, rel := range pruned {
		var err error
		if id, ok := strings.CutPrefix(rel, "backups/"); ok {
			err = v.cfg.Bucket.DeleteBackup(ctx, b.ns, id)
		} else {
			err = v.cfg.Bucket.DeleteSegment(ctx, b.ns, strings.TrimPrefix(rel, "wal/"))
		}
		if err != nil {
			b.mu.Lock()
			b.pruned = append(b.pruned, pruned[i:]...)
			b.mu.Unlock()
			return err
		}
	}
	return nil
}

// changedBackups groups the files of every backup that has a changed file.
func changedBackups(files []wire.FileEntry, changed map[string]bool) map[string][]wire.FileEntry {
	touched := map[string]bool{}
	for _, f := range files {
		if id, ok := backupOf(f.Path); ok && changed[f.Path] {
			touched[id] = true
		}
	}
	backups := map[string][]wire.FileEntry{}
	for _, f := range files {
		if id, ok := backupOf(f.Path); ok && touched[id] {
			backups[id] = append(backups[id], f)
		}
	}
	return backups
}

// backupOf returns the backup a repository path belongs to.
func backupOf(rel string) (string, bool) {
	rest, ok := strings.CutPrefix(rel, "backups/")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "/")
	return id, ok
}

// stamp is what a file looked like when it was stored: a pass sends only
// files whose stamp changed, so an idle box costs no requests.
type stamp struct {
	size int64
	mod  time.Time
}

// changed returns the files whose stamps differ from those remembered,
// and the stamps to remember once they are stored.
// Paths are relative to base in the namespace directory.
func (v *Vault) changed(b *box, files []wire.FileEntry, base string) (map[string]bool, map[string]stamp) {
	v.offMu.Lock()
	defer v.offMu.Unlock()
	changed, stamps := map[string]bool{}, map[string]stamp{}
	for _, f := range files {
		fi, err := b.root.Stat(filepath.Join(base, filepath.FromSlash(f.Path)))
		if err != nil {
			continue // removed meanwhile
		}
		st := stamp{size: fi.Size(), mod: fi.ModTime()}
		stamps[f.Path] = st
		if v.offloaded[b.ns+"/"+f.Path] != st {
			changed[f.Path] = true
		}
	}
	return changed, stamps
}

// stampOf is the stamp remembered for a file.
func (v *Vault) stampOf(b *box, rel string) stamp {
	v.offMu.Lock()
	defer v.offMu.Unlock()
	return v.offloaded[b.ns+"/"+rel]
}

func (v *Vault) remember(b *box, stamps map[string]stamp) {
	v.offMu.Lock()
	defer v.offMu.Unlock()
	if v.offloaded == nil {
		v.offloaded = map[string]stamp{}
	}
	for rel, st := range stamps {
		v.offloaded[b.ns+"/"+rel] = st
	}
}

// growth is the segment being filled: its repository path, durable size,
// the WAL bytes that holds and its stamp.
type growth struct {
	rel   string
	size  int64
	raw   int64
	stamp stamp
}

// growing returns the segment being filled; b.mu is held.
func (b *box) growing() growth {
	if b.repo == nil || !b.have {
		return growth{}
	}
	rel := archive.WALFile(b.repo.Info.SegmentSize, b.cur.tli, b.cur.seg, archive.WALPartial)
	g := growth{rel: filepath.ToSlash(rel), raw: int64(b.cur.fill)}
	if fi, err := b.root.Stat(inRepo(rel)); err == nil {
		g.size, g.stamp = fi.Size(), stamp{size: fi.Size(), mod: fi.ModTime()}
	}
	return g
}

// offloadBackups stores the committed backups the bucket lacks.
func (v *Vault) offloadBackups(ctx context.Context, b *box, backups map[string][]wire.FileEntry) error {
	if len(backups) == 0 {
		return nil
	}
	stored, err := v.cfg.Bucket.Backups(ctx, b.ns)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, id := range stored {
		have[id] = true
	}
	for id, ents := range backups {
		if have[id] {
			continue
		}
		if err := v.offloadBackup(ctx, b, id, ents); err != nil {
			return err
		}
	}
	return nil
}

func (v *Vault) offloadBackup(ctx context.Context, b *box, id string, ents []wire.FileEntry) error {
	meta, err := b.root.ReadFile(inRepo(path.Join("backups", id, "backup.json")))
	if err != nil {
		return fmt.Errorf("backup %s: %w", id, err)
	}
	var files []bucket.File
	for _, e := range ents {
		name := path.Base(e.Path)
		if name == "backup.json" {
			continue
		}
		f, err := b.root.Open(inRepo(filepath.FromSlash(e.Path)))
		if err != nil {
			return fmt.Errorf("backup %s: %w", id, err) // removed by retention meanwhile: next time
		}
		defer f.Close()
		files = append(files, bucket.File{Name: name, Size: e.Size, Data: f})
	}
	return v.cfg.Bucket.PutBackup(ctx, b.ns, id, meta, files)
}

// offloadFile stores one file outside the backups: WAL segments whole
// (or, the one being filled, in batches, raw being the WAL bytes it
// holds; -1 for any other file), anything else replaced when it changed.
func (v *Vault) offloadFile(ctx context.Context, b *box, e wire.FileEntry, raw int64) error {
	f, err := b.root.Open(inRepo(filepath.FromSlash(e.Path)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed by retention or renamed meanwhile
	}
	if err != nil {
		return err
	}
	defer f.Close()
	bk := v.cfg.Bucket
	switch {
	case raw >= 0:
		_, err = bk.FlushPartial(ctx, b.ns, strings.TrimPrefix(e.Path, "wal/"), f, e.Size, raw)
	case strings.HasPrefix(e.Path, "wal/") && strings.HasSuffix(e.Path, archive.WALPartial):
		err = bk.PutSegment(ctx, b.ns, strings.TrimPrefix(e.Path, "wal/"), f, e.Size)
	default:
		err = bk.PutFile(ctx, b.ns, e.Path, io.NewSectionReader(f, 0, e.Size), e.Size)
	}
	return err
}

// repoFiles lists a repository's files: everything but temporary files,
// locks and uploads in progress (names starting with a dot).
func repoFiles(root string) ([]wire.FileEntry, error) {
	var out []wire.FileEntry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
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
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
