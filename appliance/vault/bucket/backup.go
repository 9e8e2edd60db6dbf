// Package bucket lays out boxes' repositories as immutable objects in a
// store: base backups as multipart uploads committed by their metadata,
// written last, and WAL as whole segments and flushed batches.
package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// Bucket is a store laid out by namespace (one per box):
//
//	NS/backups/ID/FILE          a backup's files
//	NS/backups/ID/backup.json   its metadata: written last, only if absent;
//	                            a backup without it does not exist
//	NS/wal/SEGMENT              a complete WAL segment, one object
//	NS/wal/SEGMENT.partial/OFF  a flushed batch of a growing segment
type Bucket struct {
	st store.Store
	// PartSize is the size of each part of a multipart upload; zero means
	// 16 MiB. Files smaller than that are written in one request.
	PartSize int64
}

// New lays out objects in st.
func New(st store.Store) *Bucket { return &Bucket{st: st} }

// Store is the store the bucket lays out.
func (b *Bucket) Store() store.Store { return b.st }

const (
	defaultPartSize = 16 << 20
	metaName        = "backup.json"
	maxMeta         = 1 << 20 // as the vault bounds backup.json
)

func (b *Bucket) partSize() int64 {
	if b.PartSize < store.MinPartSize {
		return defaultPartSize
	}
	return b.PartSize
}

func backupKey(ns, id, name string) string { return path.Join(ns, "backups", id, name) }

// File is one file of a backup: its name and contents.
type File struct {
	Name string
	Size int64
	Data io.ReaderAt
}

// PutBackup stores a backup's files, each resumed from the parts already
// stored, then its metadata only if absent: until that last write the
// backup is invisible, and a second commit of the same backup finds the
// same metadata and succeeds. A different backup.json under the same ID
// is refused.
func (b *Bucket) PutBackup(ctx context.Context, ns, id string, meta []byte, files []File) error {
	for _, f := range files {
		if f.Name == metaName {
			return fmt.Errorf("bucket: backup %s: %s is written last by PutBackup, not as a file", id, metaName)
		}
		if err := b.putFile(ctx, backupKey(ns, id, f.Name), f.Size, f.Data); err != nil {
			return fmt.Errorf("bucket: backup %s: %w", id, err)
		}
	}
	key := backupKey(ns, id, metaName)
	_, err := b.st.PutIfAbsent(ctx, key, bytes.NewReader(meta), int64(len(meta)))
	if errors.Is(err, store.ErrExists) {
		old, rerr := store.ReadAll(ctx, b.st, key, maxMeta)
		if rerr != nil {
			return fmt.Errorf("bucket: backup %s: %w", id, rerr)
		}
		if !bytes.Equal(old, meta) {
			return fmt.Errorf("bucket: backup %s: a different %s is stored under this ID; give the backup a new ID", id, metaName)
		}
		return nil // committed before; the answer was lost
	}
	if err != nil {
		return fmt.Errorf("bucket: commit backup %s: %w", id, err)
	}
	return nil
}

// putFile stores one file: whole if it is small, else as a multipart
// upload continued from the parts a previous attempt stored.
func (b *Bucket) putFile(ctx context.Context, key string, size int64, data io.ReaderAt) error {
	if fi, err := b.st.Stat(ctx, key); err == nil {
		if fi.Size != size {
			return fmt.Errorf("%s is stored with %d bytes, not %d; delete the half-stored backup and send it again", key, fi.Size, size)
		}
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if size <= b.partSize() {
		_, err := b.st.PutIfAbsent(ctx, key, io.NewSectionReader(data, 0, size), size)
		if errors.Is(err, store.ErrExists) {
			return b.putFile(ctx, key, size, data) // another writer won; check its size
		}
		return err
	}
	id, parts, err := b.resume(ctx, key, size)
	if err != nil {
		return err
	}
	ps := b.partSize()
	for off := int64(len(parts)) * ps; off < size; off += ps {
		n := min(ps, size-off)
		p, err := b.st.UploadPart(ctx, key, id, len(parts)+1, io.NewSectionReader(data, off, n), n)
		if err != nil {
			return err
		}
		parts = append(parts, p)
	}
	_, err = b.st.CompleteMultipart(ctx, key, id, parts)
	return err
}

// resume finds an upload of key begun before and the run of whole parts
// it holds from part 1; it aborts any other upload of the same key. With
// none, it begins one.
func (b *Bucket) resume(ctx context.Context, key string, size int64) (string, []store.Part, error) {
	ups, err := b.st.ListUploads(ctx, key)
	if err != nil {
		return "", nil, err
	}
	id := ""
	for _, u := range ups {
		switch {
		case u.Key != key:
		case id == "":
			id = u.ID
		default:
			b.st.AbortMultipart(ctx, key, u.ID) // a leftover; its parts are not needed
		}
	}
	if id == "" {
		id, err = b.st.CreateMultipart(ctx, key)
		return id, nil, err
	}
	stored, err := b.st.ListParts(ctx, key, id)
	if err != nil {
		return "", nil, err
	}
	ps := b.partSize()
	var parts []store.Part
	for i, p := range stored {
		want := min(ps, size-int64(i)*ps)
		if p.Number != i+1 || p.Size != want {
			break // a part of another size, or after a gap: send again from here
		}
		parts = append(parts, p)
	}
	return id, parts, nil
}

// Backups lists the committed backups of a namespace: those whose
// metadata is stored.
func (b *Bucket) Backups(ctx context.Context, ns string) ([]string, error) {
	var ids []string
	err := b.st.List(ctx, path.Join(ns, "backups")+"/", func(fi store.Info) error {
		rest := strings.TrimPrefix(fi.Key, path.Join(ns, "backups")+"/")
		if id, name, ok := strings.Cut(rest, "/"); ok && name == metaName {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bucket: list backups of %s: %w", ns, err)
	}
	return ids, nil
}

// Meta reads a committed backup's metadata.
func (b *Bucket) Meta(ctx context.Context, ns, id string) ([]byte, error) {
	return store.ReadAll(ctx, b.st, backupKey(ns, id, metaName), maxMeta)
}

// DeleteBackup removes the metadata first, so the backup stops existing
// before its files go; a crash in between leaves files that a later
// DeleteBackup (or PutBackup) of the same ID finds.
func (b *Bucket) DeleteBackup(ctx context.Context, ns, id string) error {
	if err := b.st.Delete(ctx, backupKey(ns, id, metaName)); err != nil {
		return fmt.Errorf("bucket: delete backup %s: %w", id, err)
	}
	var keys []string
	err := b.st.List(ctx, backupKey(ns, id, "")+"/", func(fi store.Info) error {
		keys = append(keys, fi.Key)
		return nil
	})
	for _, k := range keys {
		if err == nil {
			err = b.st.Delete(ctx, k)
		}
	}
	if err != nil {
		return fmt.Errorf("bucket: delete backup %s: %w", id, err)
	}
	return nil
}

// PutFile stores a file of the repository that is neither a backup's nor
// a WAL segment (a history, a session marker, the repository's
// description, wal/state.json): a small one replaces the stored copy (the
// caller sends only files that changed; reading the old copy to compare
// would cost a request as well), a bigger one is stored once.
func (b *Bucket) PutFile(ctx context.Context, ns, rel string, data io.ReaderAt, size int64) error {
	key := path.Join(ns, rel)
	if size > maxMeta {
		return b.putFile(ctx, key, size, data)
	}
	fi, err := b.st.Stat(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		_, err = b.st.PutIfAbsent(ctx, key, io.NewSectionReader(data, 0, size), size)
	case err == nil:
		_, err = b.st.PutIfMatch(ctx, key, io.NewSectionReader(data, 0, size), size, fi.ETag)
	}
	if err != nil {
		return fmt.Errorf("bucket: store %s: %w", rel, err)
	}
	return nil
}
