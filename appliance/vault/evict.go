package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// With a bucket, a vault node's disk need not hold every namespace
// whole: Evict removes from the directory the committed backups'
// encrypted files and the complete WAL segments older than Config.LocalKeep that the
// bucket holds, and records each in the namespace's evicted.json. A
// restore's listing still lists them and a read of one is served from
// the bucket; retention removes evicted WAL from the bucket as it does
// the WAL still on disk. The backups' plain metadata and signatures, the
// segment being filled and everything else stay on disk.

// evictedRel records a namespace's evicted files, in its directory
// (outside the repository, so no listing or offload takes it for one).
const evictedRel = "evicted.json"

// evictedFile is one evicted file: its size, and for a WAL segment its
// timeline and number, which retention needs.
type evictedFile struct {
	Size  int64  `json:"size"`
	TLI   uint32 `json:"tli,omitempty"`
	SegNo uint64 `json:"seg,omitempty"`
}

// maxEvicted bounds evicted.json as read back.
const maxEvicted = 64 << 20

// evictedFiles loads the namespace's evicted files once; b.mu is held.
func (b *box) evictedFiles() (map[string]evictedFile, error) {
	if b.evicted != nil {
		return b.evicted, nil
	}
	b.evicted = map[string]evictedFile{}
	f, err := b.root.Open(evictedRel)
	if errors.Is(err, fs.ErrNotExist) {
		return b.evicted, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %s of %s: %w", evictedRel, b.ns, err)
	}
	defer f.Close()
	if err := json.NewDecoder(io.LimitReader(f, maxEvicted)).Decode(&b.evicted); err != nil {
		b.evicted = nil
		return nil, fmt.Errorf("vault: %s of %s: %w", evictedRel, b.ns, err)
	}
	return b.evicted, nil
}

// saveEvicted writes the record durably; b.mu is held.
func (b *box) saveEvicted() error {
	data, err := json.Marshal(b.evicted)
	if err != nil {
		return err
	}
	return b.writeFile(evictedRel, data)
}

// Evict removes from the directory what the bucket holds and what is
// older than Config.LocalKeep; it does nothing without both. A
// namespace that fails is reported and the others still go.
func (v *Vault) Evict(ctx context.Context) error {
	if v.cfg.Bucket == nil || v.cfg.LocalKeep <= 0 {
		return nil
	}
	return v.eachBox(ctx, "evict", v.evictBox)
}

// evictBox evicts one namespace's old files the bucket holds.
func (v *Vault) evictBox(ctx context.Context, b *box) error {
	cands, err := v.evictable(b)
	if err != nil {
		return err
	}
	for rel, ef := range cands {
		held, err := v.bucketHoldsRepo(ctx, b.ns, rel, ef.Size)
		if err != nil {
			return err
		}
		if held {
			if err := b.evict(rel, ef); err != nil {
				return err
			}
		}
	}
	return nil
}

// evictable lists the files old enough to evict: committed backups'
// encrypted files (their plain metadata and signature stay, for
// retention and the keyless check), and complete WAL segments, less what
// the namespace's trusted standby still reads from the disk (keptFor).
func (v *Vault) evictable(b *box) (map[string]evictedFile, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep, all := v.keptFor(b)
	if b.repo == nil || all {
		return nil, nil
	}
	before := v.cfg.Now().Add(-v.cfg.LocalKeep)
	out := map[string]evictedFile{}
	files, err := repoFiles(b.repoDir())
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if id, ok := backupOf(f.Path); ok && id != keep.backup && strings.HasSuffix(f.Path, ".age") && v.older(b, f.Path, before) {
			out[f.Path] = evictedFile{Size: f.Size}
		}
	}
	return out, v.evictableWAL(b, keep, before, out)
}

// evictableWAL adds to out the complete WAL segments older than before
// that the standby, if any, replayed. b.mu is held.
func (v *Vault) evictableWAL(b *box, keep standbyKeep, before time.Time, out map[string]evictedFile) error {
	tls, err := b.repo.Timelines()
	if err != nil {
		return err
	}
	cur := b.growing().rel
	size := uint64(b.repo.Info.SegmentSize)
	for _, tl := range tls {
		for _, s := range tl.Segments {
			rel := filepath.ToSlash(archive.WALFile(b.repo.Info.SegmentSize, s.TLI, s.SegNo, archive.WALPartial))
			replayed := !keep.standby || (s.SegNo+1)*size <= uint64(keep.replayed)
			if rel != cur && replayed && s.ModTime.Before(before) {
				out[rel] = evictedFile{Size: s.Size, TLI: s.TLI, SegNo: s.SegNo}
			}
		}
	}
	return nil
}

// standbyKeep is what a namespace's trusted standby needs on the disk.
type standbyKeep struct {
	standby  bool
	replayed archive.LSN // WAL before it is replayed and may go
	backup   string      // the newest backup, which a restarted standby restores from
}

// keptFor returns what the namespace's trusted standby still reads from
// the disk: its restore_command (clinicctl wal-fetch) and its restore read
// the directory, not the bucket. Until it replays it needs everything
// (all); then the WAL it has not replayed and the newest backup's files.
// b.mu is held.
func (v *Vault) keptFor(b *box) (keep standbyKeep, all bool) {
	sb := v.cfg.Standbys[b.ns]
	if sb == nil {
		return keep, false
	}
	st := sb.Status()
	if st.State != "replaying" || st.Replayed == 0 || b.repo == nil {
		return keep, true
	}
	done, _, err := b.repo.Backups()
	if err != nil {
		return keep, true
	}
	keep = standbyKeep{standby: true, replayed: st.Replayed}
	for _, bk := range done {
		keep.backup = max(keep.backup, bk.ID)
	}
	return keep, false
}

// older reports whether a repository file last changed before t.
func (v *Vault) older(b *box, rel string, t time.Time) bool {
	fi, err := b.root.Stat(inRepo(filepath.FromSlash(rel)))
	return err == nil && fi.ModTime().Before(t)
}

// evict records one file as evicted, then removes it: a crash in between
// leaves it on disk, where reads still find it first.
func (b *box) evict(rel string, ef evictedFile) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ev, err := b.evictedFiles()
	if err != nil {
		return err
	}
	fi, err := b.root.Stat(inRepo(filepath.FromSlash(rel)))
	if err != nil || fi.Size() != ef.Size {
		return nil // removed by retention, or changed, meanwhile
	}
	ev[rel] = ef
	if err := b.saveEvicted(); err != nil {
		return err
	}
	return b.root.Remove(inRepo(filepath.FromSlash(rel)))
}

// forget drops evicted files retention removed: a backup's (prefix
// backups/ID/) or a segment's (its path); b.mu is held.
func (b *box) forget(match func(rel string) bool) error {
	ev, err := b.evictedFiles()
	if err != nil || len(ev) == 0 {
		return err
	}
	n := len(ev)
	for rel := range ev {
		if match(rel) {
			delete(ev, rel)
		}
	}
	if len(ev) == n {
		return nil
	}
	return b.saveEvicted()
}

// withEvicted adds the evicted files to a listing, in path order.
func (b *box) withEvicted(list []wire.FileEntry) ([]wire.FileEntry, error) {
	b.mu.Lock()
	ev, err := b.evictedFiles()
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	listed := map[string]bool{}
	for _, f := range list {
		listed[f.Path] = true
	}
	for rel, ef := range ev {
		if !listed[rel] {
			list = append(list, wire.FileEntry{Path: rel, Size: ef.Size})
		}
	}
	b.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	return list, nil
}

// serveEvicted serves an evicted file from the bucket; false when rel is
// not evicted.
func (v *Vault) serveEvicted(w http.ResponseWriter, r *http.Request, b *box, rel string) (bool, error) {
	b.mu.Lock()
	ev, err := b.evictedFiles()
	ef, ok := ev[rel]
	b.mu.Unlock()
	if err != nil || !ok || v.cfg.Bucket == nil {
		return false, err
	}
	rc, err := v.cfg.Bucket.Store().Get(r.Context(), path.Join(b.ns, rel), 0, -1)
	if err != nil {
		return true, fmt.Errorf("vault: %s of %s from the bucket: %w", rel, b.ns, err)
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(ef.Size, 10))
	w.WriteHeader(http.StatusOK)
	_, err = io.CopyN(w, rc, ef.Size)
	if err != nil {
		v.log.Warn("serving from the bucket", "op", "read", "namespace", b.ns, "path", rel, "err", err)
	}
	return true, nil
}

// ownedBy reports whether rel is one of backup id's files.
func ownedBy(id string) func(string) bool {
	return func(rel string) bool { return strings.HasPrefix(rel, "backups/"+id+"/") }
}

// pruneEvictedWAL drops the evicted segments before floor, as pruneWAL
// does those on disk, and lists them for the bucket; b.mu is held.
func (b *box) pruneEvictedWAL(floor Span) ([]Removal, error) {
	first := uint64(floor.Start) / b.repo.Info.SegmentSize
	var doomed []string
	err := b.forget(func(rel string) bool {
		ef := b.evicted[rel]
		if ef.TLI == 0 || ef.TLI > floor.Timeline || (ef.TLI == floor.Timeline && ef.SegNo >= first) {
			return false
		}
		doomed = append(doomed, rel)
		return true
	})
	if err != nil || len(doomed) == 0 {
		return nil, err
	}
	sort.Strings(doomed)
	b.pruned = append(b.pruned, doomed...)
	return []Removal{{b.ns, fmt.Sprintf("%d evicted WAL segments %s..%s, from the bucket", len(doomed), path.Base(doomed[0]), path.Base(doomed[len(doomed)-1])),
		fmt.Sprintf("before the oldest kept verified backup's start %s on timeline %d", floor.Start, floor.Timeline)}}, nil
}
