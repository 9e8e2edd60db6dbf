package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// A local upload is a directory .uploads/ID holding a file "key" with the
// object's key and one file per part, named by its number. Completing it
// joins the parts into a temporary file, renames that into place and
// removes the directory: a crash leaves either the upload or the object.

// MinPartSize is the least size of every part but the last (S3's limit);
// the local store enforces it too, so nothing passes here that a bucket
// would refuse.
const MinPartSize = 5 << 20

// maxPartSize bounds one part (S3's limit).
const maxPartSize = 5 << 30

func uploadDir(id string) string { return path.Join(uploadsDir, id) }

// CreateMultipart makes the upload's directory with its key.
func (l *Local) CreateMultipart(ctx context.Context, key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	id := randomID()
	dir := uploadDir(id)
	if err := l.root.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("store: begin upload of %s: %w", key, err)
	}
	tmp, err := l.writeTemp(strings.NewReader(key), int64(len(key)))
	if err == nil {
		err = l.root.Rename(tmp, path.Join(dir, "key"))
	}
	if err == nil {
		err = l.syncDir(dir)
	}
	if err == nil {
		err = l.syncDir(uploadsDir)
	}
	if err != nil {
		l.root.RemoveAll(dir)
		return "", fmt.Errorf("store: begin upload of %s: %w", key, err)
	}
	return id, nil
}

// uploadOf checks that id is an upload of key.
func (l *Local) uploadOf(key, id string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("store: upload %.40q of %s: %w", id, key, ErrNotFound)
	}
	got, err := l.root.ReadFile(path.Join(uploadDir(id), "key"))
	if err != nil || string(got) != key {
		return fmt.Errorf("store: upload %s of %s: %w", id, key, ErrNotFound)
	}
	return nil
}

// UploadPart writes the part durably under its number, replacing an
// earlier copy of the same part.
func (l *Local) UploadPart(ctx context.Context, key, id string, num int, r io.Reader, size int64) (Part, error) {
	if err := l.uploadOf(key, id); err != nil {
		return Part{}, err
	}
	if num < 1 || num > MaxParts || size < 0 || size > maxPartSize {
		return Part{}, fmt.Errorf("store: upload %s part %d of %d bytes: parts are numbered 1 to %d and at most 5 GiB", key, num, size, MaxParts)
	}
	tmp, err := l.writeTemp(r, size)
	if err != nil {
		return Part{}, fmt.Errorf("store: upload %s part %d: %w", key, num, err)
	}
	name := path.Join(uploadDir(id), strconv.Itoa(num))
	if err := l.root.Rename(tmp, name); err != nil {
		l.root.Remove(tmp)
		return Part{}, fmt.Errorf("store: upload %s part %d: %w", key, num, err)
	}
	if err := l.syncDir(uploadDir(id)); err != nil {
		return Part{}, fmt.Errorf("store: upload %s part %d: %w", key, num, err)
	}
	fi, err := l.root.Stat(name)
	if err != nil {
		return Part{}, fmt.Errorf("store: upload %s part %d: %w", key, num, err)
	}
	return Part{Number: num, Size: fi.Size(), ETag: info(name, fi).ETag}, nil
}

// ListParts reads the upload's directory.
func (l *Local) ListParts(ctx context.Context, key, id string) ([]Part, error) {
	if err := l.uploadOf(key, id); err != nil {
		return nil, err
	}
	ents, err := fs.ReadDir(l.root.FS(), uploadDir(id))
	if err != nil {
		return nil, fmt.Errorf("store: list parts of %s: %w", key, err)
	}
	var parts []Part
	for _, e := range ents {
		num, err := strconv.Atoi(e.Name())
		if err != nil || num < 1 || num > MaxParts {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("store: list parts of %s: %w", key, err)
		}
		parts = append(parts, Part{Number: num, Size: fi.Size(), ETag: info(e.Name(), fi).ETag})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// ListUploads reads every upload's key.
func (l *Local) ListUploads(ctx context.Context, prefix string) ([]Upload, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	ents, err := fs.ReadDir(l.root.FS(), uploadsDir)
	if err != nil {
		return nil, fmt.Errorf("store: list uploads: %w", err)
	}
	var ups []Upload
	for _, e := range ents {
		key, err := l.root.ReadFile(path.Join(uploadsDir, e.Name(), "key"))
		if err != nil || len(key) > maxKey {
			continue // a directory whose creation a crash cut short
		}
		if strings.HasPrefix(string(key), prefix) {
			ups = append(ups, Upload{Key: string(key), ID: e.Name()})
		}
	}
	sort.Slice(ups, func(i, j int) bool {
		return ups[i].Key < ups[j].Key || (ups[i].Key == ups[j].Key && ups[i].ID < ups[j].ID)
	})
	return ups, nil
}

// CompleteMultipart checks the parts against those stored, joins them
// into a temporary file and renames it into place.
func (l *Local) CompleteMultipart(ctx context.Context, key, id string, parts []Part) (Info, error) {
	if err := l.uploadOf(key, id); err != nil {
		return Info{}, err
	}
	stored, err := l.ListParts(ctx, key, id)
	if err != nil {
		return Info{}, err
	}
	total, err := checkParts(key, parts, stored)
	if err != nil {
		return Info{}, err
	}
	readers := make([]io.Reader, 0, len(parts))
	for _, p := range parts {
		f, err := l.root.Open(path.Join(uploadDir(id), strconv.Itoa(p.Number)))
		if err != nil {
			return Info{}, fmt.Errorf("store: complete %s: %w", key, err)
		}
		defer f.Close()
		readers = append(readers, f)
	}
	if err := l.mkdirs(path.Dir(key)); err != nil {
		return Info{}, fmt.Errorf("store: complete %s: %w", key, err)
	}
	tmp, err := l.writeTemp(io.MultiReader(readers...), total)
	if err == nil {
		err = l.root.Rename(tmp, key)
	}
	if err == nil {
		err = l.syncDir(path.Dir(key))
	}
	if err != nil {
		return Info{}, fmt.Errorf("store: complete %s: %w", key, err)
	}
	l.AbortMultipart(ctx, key, id)
	return l.Stat(ctx, key)
}

// checkParts checks that the parts to join name stored parts, in order,
// with their ETags, and that all but the last are big enough; it returns
// the object's size.
func checkParts(key string, parts, stored []Part) (int64, error) {
	have := map[int]Part{}
	for _, p := range stored {
		have[p.Number] = p
	}
	if len(parts) == 0 {
		return 0, fmt.Errorf("store: complete %s: no parts given; upload at least one", key)
	}
	var total int64
	for i, p := range parts {
		s, ok := have[p.Number]
		switch {
		case !ok || s.ETag != p.ETag:
			return 0, fmt.Errorf("store: complete %s: part %d is not stored with ETag %q; list the parts and upload it again", key, p.Number, p.ETag)
		case i > 0 && p.Number <= parts[i-1].Number:
			return 0, fmt.Errorf("store: complete %s: parts must be in ascending order", key)
		case i < len(parts)-1 && s.Size < MinPartSize:
			return 0, fmt.Errorf("store: complete %s: part %d is %d bytes; every part but the last needs at least %d", key, p.Number, s.Size, MinPartSize)
		}
		total += s.Size
	}
	return total, nil
}

// AbortMultipart removes the upload's directory.
func (l *Local) AbortMultipart(ctx context.Context, key, id string) error {
	if err := l.uploadOf(key, id); err != nil {
		return err
	}
	if err := l.root.RemoveAll(uploadDir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: abort upload of %s: %w", key, err)
	}
	return l.syncDir(uploadsDir)
}
