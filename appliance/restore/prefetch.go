package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
)

// PostgreSQL runs restore_command once per WAL segment and waits for it:
// starting clinicctl, reading the key, decrypting and decompressing 16 MB
// each time keeps recovery waiting longer than replaying does. So the
// first wal-fetch that finds a segment missing from the prefetch cache
// starts a prefetcher, a background clinicctl that keeps the next few
// complete segments decrypted in a private directory under pg_wal (which
// base backups of the restored server leave out), and restore_command takes
// a segment found there with a plain rename before it falls back to
// wal-fetch. A segment goes into the cache only after it decrypted
// (age authenticates every 64 KB) and decompressed (zstd checksums) whole,
// under a temporary name renamed into place, so the cache holds only
// segments exactly as stored; a damaged segment is never cached, and
// wal-fetch then refuses it loudly. recovery_end_command renames the cache
// away and removes it, which ends the prefetcher.

// PrefetchDir is the prefetch cache, relative to the data directory (the
// working directory of restore_command).
const PrefetchDir = "pg_wal/.clinicbox-prefetch"

const (
	wantFile = ".want" // the last segment wal-fetch had to serve itself
	lockFile = ".lock" // held by the running prefetcher
)

// Prefetch keeps decrypted segments ready for recovery.
type Prefetch struct {
	Repo       *archive.Repo
	Identities []age.Identity
	Dir        string // the cache; the prefetcher ends when it disappears
	// Ahead is how many segments are kept ready. Zero means 4.
	Ahead int
	// Idle ends the prefetcher when recovery takes nothing for this long.
	// Zero means 30 s.
	Idle time.Duration
	// Poll is how often the cache is looked at. Zero means 5 ms.
	Poll time.Duration
	// Guard makes each segment safe to replay (walguard.go); PGData is
	// the data directory recovery replays into.
	Guard  Guard
	PGData string

	// looked, when set, is told what the prefetcher knows after each look
	// at the cache that found nothing to do: tests wait on it instead of
	// sleeping.
	looked func(prefetchState)
}

// WantSegment records that recovery asked for a segment the cache did not
// hold, so the prefetcher continues after it, and reports whether a
// prefetcher must be started (none holds the cache's lock). It creates the
// cache directory when missing.
func WantSegment(dir, name string) (start bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("restore: prefetch cache: %w", err)
	}
	tmp := filepath.Join(dir, ".tmp"+wantFile)
	if err := os.WriteFile(tmp, []byte(name), 0o600); err != nil {
		return false, fmt.Errorf("restore: prefetch cache: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, wantFile)); err != nil {
		return false, fmt.Errorf("restore: prefetch cache: %w", err)
	}
	l, err := tryLock(filepath.Join(dir, lockFile))
	if err != nil || l == nil {
		return false, err
	}
	l.Close()
	return true, nil
}

// tryLock takes an exclusive lock on path; nil, nil means another process
// holds it.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore: prefetch cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("restore: prefetch cache: %w", err)
	}
	return f, nil
}

// Run fills the cache until the cache disappears, ctx ends, or recovery
// takes nothing for Idle. It returns at once when another prefetcher runs.
func (p *Prefetch) Run(ctx context.Context) error {
	if p.Ahead <= 0 {
		p.Ahead = 4
	}
	if p.Idle <= 0 {
		p.Idle = 30 * time.Second
	}
	if p.Poll <= 0 {
		p.Poll = 5 * time.Millisecond
	}
	l, err := tryLock(filepath.Join(p.Dir, lockFile))
	if err != nil || l == nil {
		return err
	}
	defer l.Close()
	st := &prefetchState{p: p, active: time.Now()}
	for ctx.Err() == nil {
		more, err := st.step()
		if errors.Is(err, errCacheGone) {
			return nil // recovery ended and removed it, or the disk is full
		}
		if err != nil || time.Since(st.active) > p.Idle {
			return err
		}
		if !more {
			if p.looked != nil {
				p.looked(*st)
			}
			select {
			case <-ctx.Done():
			case <-time.After(p.Poll):
			}
		}
	}
	return nil
}

// prefetchState is what the prefetcher knows between looks at the cache.
type prefetchState struct {
	p      *Prefetch
	want   string    // the last .want seen
	tli    uint32    // timeline being prefetched; 0 before the first want
	stuck  bool      // the next segment cannot be cached; wait for a new want
	from   uint64    // the wanted segment: the cache holds segments after it
	next   uint64    // next segment to cache
	last   uint64    // highest complete segment seen in the repository on tli
	cached int       // entries seen in the cache at the last look
	active time.Time // when recovery last took a segment or asked for one
}

// step looks at the cache once and caches one segment if one is due. It
// reports whether it cached one (then it looks again at once).
func (s *prefetchState) step() (bool, error) {
	if _, err := os.Stat(s.p.Dir); err != nil {
		return false, errCacheGone
	}
	if w, err := os.ReadFile(filepath.Join(s.p.Dir, wantFile)); err == nil && string(w) != s.want {
		s.want = string(w)
		s.active = time.Now()
		s.tli, s.stuck = 0, false
		if tli, segNo, ok := archive.ParseSegmentName(s.want, s.p.Repo.Info.SegmentSize); ok {
			s.tli, s.from, s.next, s.last = tli, segNo, segNo+1, 0
		}
	}
	entries := s.entries()
	if entries < s.cached {
		s.active = time.Now() // recovery took some
	}
	s.cached = entries
	if s.tli == 0 || s.stuck || entries >= s.p.Ahead {
		return false, nil
	}
	if s.next > s.last {
		if s.last = s.p.lastComplete(s.tli); s.next > s.last {
			return false, nil
		}
	}
	switch err := s.p.cache(s.tli, s.next); {
	case errors.Is(err, errCacheGone):
		return false, err
	case err != nil:
		// Damaged or partial: wal-fetch serves (or refuses) it itself,
		// and the next want says where to go on.
		s.stuck = true
		return false, nil
	}
	s.next++
	s.cached++
	return true, nil
}

var errCacheGone = errors.New("restore: the prefetch cache is gone or cannot be written")

// entries counts the cached segments, removing those recovery will not ask
// for: any but the ones made since the last want.
func (s *prefetchState) entries() int {
	names, _ := os.ReadDir(s.p.Dir)
	n := 0
	for _, e := range names {
		tli, segNo, ok := archive.ParseSegmentName(e.Name(), s.p.Repo.Info.SegmentSize)
		if !ok {
			continue
		}
		if s.tli == 0 || tli != s.tli || segNo <= s.from || segNo >= s.next {
			os.Remove(filepath.Join(s.p.Dir, e.Name()))
			continue
		}
		n++
	}
	return n
}

// lastComplete is the highest complete segment stored on a timeline.
func (p *Prefetch) lastComplete(tli uint32) uint64 {
	tls, err := p.Repo.Timelines()
	if err != nil {
		return 0
	}
	var last uint64
	for _, tl := range tls {
		if tl.TLI != tli {
			continue
		}
		for _, s := range tl.Segments {
			if !s.Partial && s.SegNo > last {
				last = s.SegNo
			}
		}
	}
	return last
}

// cache decrypts one complete segment into the cache. Failing to write
// the cache is errCacheGone: the prefetcher stops, and recovery goes on
// through wal-fetch.
func (p *Prefetch) cache(tli uint32, segNo uint64) error {
	name := archive.SegmentName(tli, segNo, p.Repo.Info.SegmentSize)
	f, err := os.CreateTemp(p.Dir, ".tmp-"+name+"-")
	if err != nil {
		return errCacheGone
	}
	f.Close()
	err = p.Repo.FetchComplete(name, f.Name(), p.Identities)
	if err == nil {
		err = p.Guard.Serve(p.Repo, p.Identities, tli, segNo, f.Name(), p.PGData)
	}
	if err != nil {
		os.Remove(f.Name())
		if _, serr := os.Stat(p.Dir); serr != nil {
			return errCacheGone
		}
		return err // damaged, partial, or the disk is full: wal-fetch decides
	}
	if err := os.Rename(f.Name(), filepath.Join(p.Dir, name)); err != nil {
		os.Remove(f.Name())
		return errCacheGone
	}
	return nil
}
