package vault

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// Rehydrate fills an empty namespace from the bucket: a vault node that
// replaces a lost one, or a second node taking a box over, gets back the
// repository the bucket holds and then serves restores, the keyless
// check and the standby from it as before. It copies the committed
// backups, the complete WAL segments with their indexes, every other
// repository file and the box's custody and audit logs (logoffload.go),
// and rebuilds the segment that was being filled from
// its flushed batches (see rehydrateGrowing), so the box goes on from
// exactly what the bucket holds; it leaves out backups never committed.
// Arrival records are not in the bucket: until backups arrive again
// retention keeps everything. It returns the number of files copied.
func (v *Vault) Rehydrate(ctx context.Context, st store.Store, ns string) (int, error) {
	if err := checkNamespace(ns); err != nil {
		return 0, err
	}
	dir := filepath.Join(v.cfg.Dir, "boxes", ns)
	if _, err := os.Stat(filepath.Join(dir, "repo", "clinicbox-repo.json")); err == nil {
		return 0, fmt.Errorf("vault: rehydrate %s: the namespace already holds a repository; only an empty one is filled from the bucket", ns)
	}
	keys, err := v.bucketKeys(ctx, st, ns)
	if err != nil {
		return 0, fmt.Errorf("vault: rehydrate %s: %w", ns, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "repo"), 0o755); err != nil {
		return 0, fmt.Errorf("vault: rehydrate %s: %w", ns, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("vault: rehydrate %s: %w", ns, err)
	}
	defer root.Close()
	// The description last: until it is there the namespace is not a
	// repository, and a rehydration cut short can simply run again.
	var desc *store.Info
	for i, fi := range keys {
		if fi.Key == ns+"/clinicbox-repo.json" {
			desc = &keys[i]
			continue
		}
		if err := fetchObject(ctx, st, root, fi, localPath(strings.TrimPrefix(fi.Key, ns+"/"))); err != nil {
			return i, fmt.Errorf("vault: rehydrate %s: %w", ns, err)
		}
	}
	if desc == nil {
		return len(keys), fmt.Errorf("vault: rehydrate %s: the bucket holds no repository for this namespace", ns)
	}
	if err := rehydrateLogs(ctx, st, root, ns); err != nil {
		return len(keys) - 1, fmt.Errorf("vault: rehydrate %s: %w", ns, err)
	}
	if err := v.rehydrateGrowing(ctx, st, root, ns, keys); err != nil {
		return len(keys) - 1, fmt.Errorf("vault: rehydrate %s: %w", ns, err)
	}
	if err := repoLayout(root); err != nil {
		return len(keys) - 1, fmt.Errorf("vault: rehydrate %s: %w", ns, err)
	}
	if err := fetchObject(ctx, st, root, *desc, inRepo("clinicbox-repo.json")); err != nil {
		return len(keys) - 1, fmt.Errorf("vault: rehydrate %s: %w", ns, err)
	}
	v.mu.Lock()
	delete(v.boxes, ns) // opened afresh, from the files now there
	v.mu.Unlock()
	if err := v.rebuildArrivals(ns, commitTimes(ns, keys)); err != nil {
		return len(keys), fmt.Errorf("vault: rehydrate %s: %w", ns, err)
	}
	return len(keys), nil
}

// repoLayout makes the directories a new repository has: the bucket
// holds no object in them while the box has sent nothing there yet (a
// node that died before its first offload left only the description,
// which a box's first call stores at once).
func repoLayout(root *os.Root) error {
	for _, d := range []string{"backups", "wal"} {
		if err := root.MkdirAll(inRepo(d), 0o755); err != nil {
			return err
		}
	}
	return syncRootDir(root, "repo")
}

// bucketKeys lists the namespace's objects that go back into the
// directory.
func (v *Vault) bucketKeys(ctx context.Context, st store.Store, ns string) ([]store.Info, error) {
	committed := map[string]bool{}
	ids, err := v.cfg.Bucket.Backups(ctx, ns)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		committed[id] = true
	}
	var keys []store.Info
	err = st.List(ctx, ns+"/", func(fi store.Info) error {
		if rel := strings.TrimPrefix(fi.Key, ns+"/"); wanted(rel, committed) {
			keys = append(keys, fi)
		}
		return nil
	})
	return keys, err
}

// wanted reports whether a bucket key (relative to its namespace) goes
// back into the directory.
func wanted(rel string, committed map[string]bool) bool {
	if strings.Contains(rel, ".partial/") || strings.HasPrefix(rel, "wal/state.json") {
		return false // batches of the segment being filled; its state
	}
	if rel == bucket.LeaseName {
		return false // the live lease: a copy offloaded would overwrite it
	}
	if isLogPart(rel) {
		return false // joined back by rehydrateLogs
	}
	if id, ok := backupOf(rel); ok {
		return committed[id]
	}
	return true
}

// localPath is where a key relative to its namespace goes in the
// namespace directory.
func localPath(rel string) string {
	if name, ok := strings.CutPrefix(rel, indexKey+"/"); ok {
		return filepath.Join(indexDir, filepath.Base(name))
	}
	if strings.HasPrefix(rel, logsDir+"/") {
		return filepath.FromSlash(rel) // the heads and the pinned key, beside the repository
	}
	return inRepo(filepath.FromSlash(rel))
}

// fetchObject copies an object into the namespace directory durably:
// a temporary file, fsync, rename, fsync of the directory.
func fetchObject(ctx context.Context, st store.Store, root *os.Root, fi store.Info, rel string) error {
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return err
	}
	rc, err := st.Get(ctx, fi.Key, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeLocal(root, rel, rc, fi.Size, fi.Key)
}

// writeLocal writes exactly size bytes from r into rel durably: a
// temporary file, fsync, rename, fsync of the directory. what names the
// source in errors.
func writeLocal(root *os.Root, rel string, r io.Reader, size int64, what string) error {
	tmp := filepath.Join(filepath.Dir(rel), ".tmp-"+randomName())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer root.Remove(tmp)
	n, err := io.CopyBuffer(f, io.LimitReader(r, size+1), make([]byte, copyBuf))
	if err == nil && n != size {
		err = fmt.Errorf("%s: got %d bytes, listed with %d", what, n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, rel)
	}
	if err == nil {
		err = syncRootDir(root, filepath.Dir(rel))
	}
	return err
}

func syncRootDir(root *os.Root, rel string) error {
	d, err := root.Open(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
