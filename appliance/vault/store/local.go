package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

// Local keeps objects as files under one directory, each written durably:
// a temporary file, fsync, then a link or rename into place and an fsync
// of the directory. Its own files (temporary files, uploads in progress,
// the lock) live under names that start with a dot, which no key has.
type Local struct {
	root *os.Root
	lock *os.File // flock'ed around conditional replaces, across processes

	// mu serializes conditional replaces and deletes within the process.
	mu sync.Mutex
}

var _ Store = (*Local)(nil)

const (
	tmpDir     = ".tmp"
	uploadsDir = ".uploads"
)

// OpenLocal opens (creating) a local store in dir.
func OpenLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	for _, d := range []string{tmpDir, uploadsDir} {
		if err := root.MkdirAll(d, 0o755); err != nil {
			root.Close()
			return nil, fmt.Errorf("store: open %s: %w", dir, err)
		}
	}
	// Temporary files left by a crash are never linked anywhere.
	root.RemoveAll(tmpDir)
	root.MkdirAll(tmpDir, 0o755)
	lock, err := root.OpenFile(".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return &Local{root: root, lock: lock}, nil
}

// Close releases the directory.
func (l *Local) Close() error {
	l.lock.Close()
	return l.root.Close()
}

// writeTemp writes exactly size bytes from r to a new fsynced temporary
// file and returns its name.
func (l *Local) writeTemp(r io.Reader, size int64) (string, error) {
	name := path.Join(tmpDir, randomID())
	f, err := l.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	err = copyExact(f, r, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		l.root.Remove(name)
		return "", err
	}
	return name, nil
}

// copyExact copies exactly size bytes of r to w, through a bounded buffer.
func copyExact(w io.Writer, r io.Reader, size int64) error {
	n, err := io.CopyBuffer(w, io.LimitReader(r, size), make([]byte, 256<<10))
	if err == nil && n != size {
		err = fmt.Errorf("the body ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	return err
}

// PutIfAbsent links the written file into place: link(2), unlike rename,
// fails when the name exists, atomically, across processes.
func (l *Local) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	if err := l.mkdirs(path.Dir(key)); err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	tmp, err := l.writeTemp(r, size)
	if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	defer l.root.Remove(tmp)
	if err := l.root.Link(tmp, key); errors.Is(err, fs.ErrExist) {
		return Info{}, fmt.Errorf("store: put %s: %w", key, ErrExists)
	} else if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	if err := l.syncDir(path.Dir(key)); err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	return l.Stat(ctx, key)
}

// PutIfMatch replaces the object under the store's lock, through
// renameio's temporary file and rename.
func (l *Local) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, etag string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	unlock, err := l.exclusive()
	if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	defer unlock()
	cur, err := l.Stat(ctx, key)
	if err != nil {
		return Info{}, err
	}
	if cur.ETag != etag {
		return Info{}, fmt.Errorf("store: put %s: %w", key, ErrConflict)
	}
	pf, err := renameio.NewPendingFile(key, renameio.WithRoot(l.root), renameio.WithPermissions(0o644))
	if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	defer pf.Cleanup()
	err = copyExact(pf, r, size)
	if err == nil {
		err = pf.CloseAtomicallyReplace()
	}
	if err == nil {
		err = l.syncDir(path.Dir(key)) // renameio leaves the directory to us
	}
	if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", key, err)
	}
	return l.Stat(ctx, key)
}

// exclusive takes the in-process mutex and the directory's flock.
func (l *Local) exclusive() (func(), error) {
	l.mu.Lock()
	if err := unix.Flock(int(l.lock.Fd()), unix.LOCK_EX); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	return func() {
		unix.Flock(int(l.lock.Fd()), unix.LOCK_UN)
		l.mu.Unlock()
	}, nil
}

// Get opens the object and reads the range from it.
func (l *Local) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	f, err := l.root.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err == nil && (off < 0 || off > fi.Size() || (n >= 0 && off+n > fi.Size())) {
		err = fmt.Errorf("range [%d, +%d) is outside the object's %d bytes", off, n, fi.Size())
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: get %s: %w", key, err)
	}
	if n < 0 {
		n = fi.Size() - off
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, nil
}

// Stat describes the file.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	fi, err := l.root.Stat(key)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return Info{}, fmt.Errorf("store: stat %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("store: stat %s: %w", key, err)
	}
	return info(key, fi), nil
}

// info describes a file. The ETag is the file's inode, modification time
// and size: every write makes a new file (a new inode) that then replaces
// the old one, so the ETag changes with each write without the file being
// read again to hash it.
func info(key string, fi fs.FileInfo) Info {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return Info{Key: key, Size: fi.Size(), Modified: fi.ModTime().UTC(),
		ETag: fmt.Sprintf("%x-%x-%x", ino, fi.ModTime().UnixNano(), fi.Size())}
}

// List walks the directory under prefix's directory part and sorts what it
// finds, since a directory walk's order is not key order ("a/b" comes
// after "a-c" as keys).
func (l *Local) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var found []Info
	err := fs.WalkDir(l.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if keep, err := listed(prefix, start, p, d, err); !keep || err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		found = append(found, info(p, fi))
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("store: list %s: %w", prefix, err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Key < found[j].Key })
	for _, fi := range found {
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// listed is List's walk step: whether the entry at p is a file under
// prefix, or what to tell the walk instead.
func listed(prefix, start, p string, d fs.DirEntry, err error) (bool, error) {
	switch {
	case errors.Is(err, fs.ErrNotExist) && p == start:
		return false, fs.SkipAll
	case err != nil:
		return false, err
	case strings.HasPrefix(d.Name(), ".") && p != ".":
		return false, skip(d)
	case d.IsDir() && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") && p != ".":
		return false, fs.SkipDir
	}
	return d.Type().IsRegular() && strings.HasPrefix(p, prefix), nil
}

func skip(d fs.DirEntry) error {
	if d.IsDir() {
		return fs.SkipDir
	}
	return nil
}

// Delete removes the file under the lock, so it cannot slip between a
// conditional replace's check and its rename.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	unlock, err := l.exclusive()
	if err != nil {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	defer unlock()
	if err := l.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	if err := l.syncDir(path.Dir(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	return nil
}

// mkdirs creates dir and fsyncs the parent of each directory it created.
func (l *Local) mkdirs(dir string) error {
	if dir == "." {
		return nil
	}
	if fi, err := l.root.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := l.mkdirs(path.Dir(dir)); err != nil {
		return err
	}
	if err := l.root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return l.syncDir(path.Dir(dir))
}

func (l *Local) syncDir(dir string) error {
	d, err := l.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomID() string {
	var r [16]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}
