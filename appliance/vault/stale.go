package vault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// StaleGrace is how long a namespace directory that a takeover set aside
// (boxes/.stale/NS-TIME, see setAside) stays whole, on the vault's clock.
// After it, DropStale removes what the bucket holds of it.
const StaleGrace = 7 * 24 * time.Hour

// staleDir holds the namespace directories set aside, under boxes.
const staleDir = ".stale"

// DropStale removes, from each directory set aside more than StaleGrace
// ago, the files the bucket holds and the files the vault derives from
// others; a file the bucket lacks (WAL this node acknowledged and never
// stored there, a box's log) stays, and with it the directory. It does
// nothing without a bucket.
func (v *Vault) DropStale(ctx context.Context) ([]Removal, error) {
	if v.cfg.Bucket == nil {
		return nil, nil
	}
	dir := filepath.Join(v.cfg.Dir, "boxes", staleDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: set-aside directories: %w", err)
	}
	var out []Removal
	for _, e := range ents {
		ns, at, ok := parseStale(e.Name())
		if !ok || !e.IsDir() || v.cfg.Now().Sub(at) < StaleGrace {
			continue
		}
		r, err := v.dropStaleDir(ctx, filepath.Join(dir, e.Name()), ns)
		if err != nil {
			return out, err
		}
		if r.What != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// staleName names a namespace's directory set aside at now.
func staleName(ns string, now time.Time) string {
	return ns + "-" + strconv.FormatInt(now.UnixNano(), 10)
}

// parseStale reads a set-aside directory's name back.
func parseStale(name string) (ns string, at time.Time, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", time.Time{}, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 64)
	if err != nil || checkNamespace(name[:i]) != nil {
		return "", time.Time{}, false
	}
	return name[:i], time.Unix(0, n), true
}

// dropStaleDir removes what the bucket holds of one set-aside directory,
// then the directories left empty.
func (v *Vault) dropStaleDir(ctx context.Context, dir, ns string) (Removal, error) {
	removed, kept := 0, 0
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		held := false
		if err == nil {
			held, err = v.bucketHolds(ctx, ns, filepath.ToSlash(rel), fi.Size())
		}
		if err != nil || !held {
			kept++
			return err
		}
		removed++
		return os.Remove(p)
	})
	for _, d := range slices.Backward(dirs) {
		os.Remove(d) // only an empty one goes
	}
	if err != nil {
		return Removal{}, fmt.Errorf("vault: set-aside directory %s: %w", dir, err)
	}
	if removed == 0 {
		return Removal{}, nil
	}
	return Removal{ns, fmt.Sprintf("%d files of %s, set aside by a takeover", removed, filepath.Base(dir)),
		fmt.Sprintf("the bucket holds them and %s passed; %d files the bucket lacks stay", StaleGrace, kept)}, nil
}

// bucketHolds reports whether a set-aside file (rel to its namespace
// directory) may go: the bucket holds it, or it is derived from others.
func (v *Vault) bucketHolds(ctx context.Context, ns, rel string, size int64) (bool, error) {
	if derived(rel) {
		return true, nil
	}
	repoRel, ok := strings.CutPrefix(rel, "repo/")
	if !ok {
		return false, nil // a box's logs, anything not offloaded
	}
	return v.bucketHoldsRepo(ctx, ns, repoRel, size)
}

// bucketHoldsRepo reports whether the bucket holds a repository file of
// size bytes (rel to the repository); a backup's file only once the
// backup is committed there.
func (v *Vault) bucketHoldsRepo(ctx context.Context, ns, repoRel string, size int64) (bool, error) {
	if id, ok := backupOf(repoRel); ok {
		if _, err := v.cfg.Bucket.Meta(ctx, ns, id); err != nil {
			return false, ignoreMissing(err) // not committed in the bucket
		}
	}
	return v.holdsObject(ctx, ns, repoRel, size)
}

// derived reports whether a namespace file carries nothing of its own:
// indexes of segments (rebuilt from the segment), arrival records (made
// again as backups arrive), the WAL state, a lease copy, the record of
// evicted files (which the bucket holds), uploads never committed,
// spooled bodies and temporary files.
func derived(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	switch {
	case first == indexDir || first == arrivalsDir || first == spoolDir:
		return true
	case rel == "repo/wal/state.json" || rel == "repo/"+bucket.LeaseName || rel == evictedRel:
		return true
	}
	return slices.ContainsFunc(strings.Split(rel, "/"), func(s string) bool { return strings.HasPrefix(s, ".") })
}

// holdsObject reports whether the bucket holds a repository file of size
// bytes: the object, at least as large; for a segment, the complete
// segment or flushed batches reaching as far.
func (v *Vault) holdsObject(ctx context.Context, ns, rel string, size int64) (bool, error) {
	fi, err := v.cfg.Bucket.Store().Stat(ctx, path.Join(ns, rel))
	if err == nil {
		return fi.Size >= size || strings.HasPrefix(rel, "wal/"), nil
	}
	if !errors.Is(err, store.ErrNotFound) || !strings.HasSuffix(rel, partialSegment) {
		return false, ignoreMissing(err)
	}
	bs, err := v.cfg.Bucket.Batches(ctx, ns, strings.TrimPrefix(rel, "wal/"))
	if err != nil || len(bs) == 0 {
		return false, err
	}
	last := bs[len(bs)-1]
	return last.Off+last.Size >= size, nil
}

// ignoreMissing turns "not in the bucket" into no error.
func ignoreMissing(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
