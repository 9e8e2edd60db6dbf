package archive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// A restore of an incremental backup rebuilds each archive's tar from its
// chain: the full backup's files are unpacked into a staging directory,
// each incremental between it and the target updates them in place (a
// block is only ever copied from the same file, so one file at a time is
// rewritten under a temporary name and renamed), and the target's delta is
// played against them as the tar stream every reader already checks (the
// manifest's checksum of every file). Staging needs room for one copy of
// the data directory beside the restore.

// MaxChain bounds the backups a restore rebuilds through: the box takes a
// fresh full before its chain is this long.
const MaxChain = 32

// errChain wraps a chain that cannot be rebuilt.
var errChain = errors.New("archive: the backup's chain is broken")

// archiveKey is the name of the tar an archive holds, whatever its
// compression or form: "base.tar" for "base.tar.zst" and "base.tar.delta".
func archiveKey(archive string) string {
	return strings.TrimSuffix(strings.TrimSuffix(archive, DeltaSuffix), ".zst")
}

// IsDelta reports whether a stored file is an incremental backup's delta.
func IsDelta(f StoredFile) bool { return strings.HasSuffix(f.Archive, DeltaSuffix) }

// Chain returns the backups b is rebuilt from: the full backup first and b
// last.
func (r *Repo) Chain(b *Backup) ([]*Backup, error) {
	chain := []*Backup{b}
	for cur := b; cur.Kind == KindIncremental; {
		if len(chain) > MaxChain {
			return nil, fmt.Errorf("%w: %s builds on more than %d backups", errChain, b.ID, MaxChain)
		}
		p, err := r.Backup(cur.Parent)
		if err != nil {
			return nil, fmt.Errorf("%w: %s builds on %s, which is not in the repository: %v", errChain, cur.ID, cur.Parent, err)
		}
		if !p.Start.Before(cur.Start) || p.SystemID != cur.SystemID {
			return nil, fmt.Errorf("%w: %s names %s as its parent, a backup of another system or not older", errChain, cur.ID, p.ID)
		}
		chain = append([]*Backup{p}, chain...)
		cur = p
	}
	return chain, nil
}

// openArchive returns the tar of archive f of b: as stored, or rebuilt
// from b's chain (staging under tmp, "" for the system's directory).
func (r *Repo) openArchive(b *Backup, f StoredFile, ids []age.Identity, tmp string) (io.ReadCloser, error) {
	if !IsDelta(f) {
		return r.OpenFile(b, f, ids)
	}
	rc, err := r.OpenFile(b, f, ids)
	if err != nil {
		return nil, err
	}
	tr, err := r.rebuild(b, f, rc, ids, tmp)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return readCloser{tr, func() error { tr.Close(); return rc.Close() }}, nil
}

// rebuild returns the tar that delta (the plaintext of f, a delta of
// backup b) rebuilds from b's chain, staged in a directory under tmp;
// Close removes the staging directory.
func (r *Repo) rebuild(b *Backup, f StoredFile, delta io.Reader, ids []age.Identity, tmp string) (io.ReadCloser, error) {
	chain, err := r.Chain(b)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, ".clinicbox-stage-")
	if err != nil {
		return nil, fmt.Errorf("archive: staging: %w", explainFS(err))
	}
	st, err := r.stageChain(chain[:len(chain)-1], archiveKey(f.Archive), dir, ids)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(applyDelta(delta, st, &tarSink{w: pw}))
	}()
	return readCloser{pr, func() error {
		pr.Close()
		<-done
		st.close()
		return os.RemoveAll(dir)
	}}, nil
}

// stageChain unpacks archive key of chain[0] (a full backup) into dir and
// applies each later backup's delta of it in place.
func (r *Repo) stageChain(chain []*Backup, key, dir string, ids []age.Identity) (*stage, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("archive: staging: %w", err)
	}
	st := &stage{root: root}
	for i, b := range chain {
		f, ok := archiveOf(b, key)
		if !ok {
			continue // a tablespace the backup did not have
		}
		if err := r.stageOne(st, b, f, ids, i == 0); err != nil {
			st.close()
			return nil, fmt.Errorf("archive: backup %s: %s: %w", b.ID, f.Name, err)
		}
	}
	return st, nil
}

func (r *Repo) stageOne(st *stage, b *Backup, f StoredFile, ids []age.Identity, full bool) error {
	if full == IsDelta(f) {
		return fmt.Errorf("%w: %s is not the kind of archive its place in the chain needs", errChain, f.Name)
	}
	rc, err := r.OpenFile(b, f, ids)
	if err != nil {
		return err
	}
	defer rc.Close()
	if full {
		return walkRawTar(rc, tarVisitor{meta: func([]byte) error { return nil }, file: st.put})
	}
	return applyDelta(rc, st, &stageSink{st: st})
}

// archiveOf finds the stored file of b that holds the tar named key.
func archiveOf(b *Backup, key string) (StoredFile, bool) {
	for _, f := range b.Files {
		if f.Archive != manifestName && archiveKey(f.Archive) == key {
			return f, true
		}
	}
	return StoredFile{}, false
}

// stage is a staging directory of one archive's files, by their names in
// the tar.
type stage struct {
	root *os.Root
	path string   // the file open for reading blocks
	f    *os.File // nil when none
}

func (s *stage) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.root.Close()
}

func stageName(path string) (string, error) {
	name := filepath.Clean(strings.TrimPrefix(path, "./"))
	if !filepath.IsLocal(name) {
		return "", fmt.Errorf("refusing entry %q: path escapes the directory", path)
	}
	return name, nil
}

// put stores one file of a full backup's tar.
func (s *stage) put(path string, _ int64, body io.Reader) error {
	name, err := stageName(path)
	if err != nil {
		return err
	}
	if err := s.root.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return explainFS(err)
	}
	out, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return explainFS(err)
	}
	_, err = io.Copy(out, body)
	return explainFS(errors.Join(err, out.Close()))
}

// block reads block i of a staged file.
func (s *stage) block(path string, i int64, p []byte) (int, error) {
	if s.f == nil || s.path != path {
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
		name, err := stageName(path)
		if err != nil {
			return 0, err
		}
		if s.f, err = s.root.Open(name); err != nil {
			return 0, err
		}
		s.path = path
	}
	n, err := s.f.ReadAt(p, i*BlockSize)
	if n == 0 {
		return 0, fmt.Errorf("the parent has no such block: %w", errors.Join(errChain, err))
	}
	return n, nil
}

// tarSink writes the rebuilt tar.
type tarSink struct{ w io.Writer }

func (t *tarSink) meta(p []byte) error { _, err := t.w.Write(p); return err }
func (t *tarSink) begin(string) error  { return nil }
func (t *tarSink) data(p []byte) error { _, err := t.w.Write(p); return err }
func (t *tarSink) end() error          { return nil }

// stageSink rewrites staged files in place, each under a temporary name
// until its last block is written.
type stageSink struct {
	st   *stage
	name string
	out  *os.File
}

func (s *stageSink) meta([]byte) error { return nil }

func (s *stageSink) begin(path string) error {
	name, err := stageName(path)
	if err != nil {
		return err
	}
	if err := s.st.root.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return explainFS(err)
	}
	s.name = name
	s.out, err = s.st.root.OpenFile(name+".cb-new", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	return explainFS(err)
}

func (s *stageSink) data(p []byte) error { _, err := s.out.Write(p); return explainFS(err) }

func (s *stageSink) end() error {
	if err := s.out.Close(); err != nil {
		return explainFS(err)
	}
	if s.st.f != nil { // the old file's blocks are no longer needed
		s.st.f.Close()
		s.st.f = nil
	}
	return explainFS(s.st.root.Rename(s.name+".cb-new", s.name))
}
