package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The catalog is computed from the directory listing every time: there is no
// index file that a crash could leave disagreeing with the files themselves.

// SegmentFile is one stored WAL segment.
type SegmentFile struct {
	TLI     uint32
	SegNo   uint64
	Name    string // PostgreSQL's segment name
	Partial bool
	Size    int64 // bytes on disk
	ModTime time.Time
}

// Timeline is the stored WAL of one timeline.
type Timeline struct {
	TLI        uint32
	Segments   []SegmentFile // sorted; a complete and a partial file of one segment both appear
	Starts     []uint64      // segments where a streaming session began
	HasHistory bool
}

// scanWAL lists wal/*/ by timeline.
func (r *Repo) scanWAL() (map[uint32]*Timeline, error) {
	if r.listing != nil {
		out := r.listedWAL()
		for _, tl := range out {
			sortTimeline(tl)
		}
		return out, nil
	}
	dirs, err := os.ReadDir(filepath.Join(r.Dir, "wal"))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	out := map[uint32]*Timeline{}
	for _, d := range dirs {
		tli, ok := parseTLIDir(d.Name())
		if !ok || !d.IsDir() {
			continue
		}
		tl := &Timeline{TLI: tli}
		out[tli] = tl
		files, err := os.ReadDir(filepath.Join(r.Dir, "wal", d.Name()))
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		for _, f := range files {
			if info, err := f.Info(); err == nil {
				r.addWALName(tl, f.Name(), info.Size(), info.ModTime())
			}
		}
		sortTimeline(tl)
	}
	return out, nil
}

func sortTimeline(tl *Timeline) {
	sort.Slice(tl.Segments, func(i, j int) bool {
		a, b := tl.Segments[i], tl.Segments[j]
		return a.SegNo < b.SegNo || (a.SegNo == b.SegNo && !a.Partial && b.Partial)
	})
	sort.Slice(tl.Starts, func(i, j int) bool { return tl.Starts[i] < tl.Starts[j] })
}

// addWALName adds the file name of wal/TLI/ to tl's catalog.
func (r *Repo) addWALName(tl *Timeline, name string, size int64, mod time.Time) {
	if name == tliDir(tl.TLI)+historySuffix {
		tl.HasHistory = true
		return
	}
	base, suffix, _ := strings.Cut(name, ".")
	suffix = "." + suffix
	t, segNo, ok := parseSegName(base, r.Info.SegmentSize)
	if !ok || t != tl.TLI {
		return
	}
	switch suffix {
	case startSuffix:
		tl.Starts = append(tl.Starts, segNo)
	case segSuffix, partialSuffix:
		tl.Segments = append(tl.Segments, SegmentFile{TLI: t, SegNo: segNo, Name: base,
			Partial: suffix == partialSuffix, Size: size, ModTime: mod})
	}
}

// Timelines returns the stored WAL, lowest timeline first.
func (r *Repo) Timelines() ([]*Timeline, error) {
	m, err := r.scanWAL()
	if err != nil {
		return nil, err
	}
	var out []*Timeline
	for _, tl := range m {
		out = append(out, tl)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TLI < out[j].TLI })
	return out, nil
}

// Backups lists complete backups, oldest first, and the names of incomplete
// ones an interrupted run left behind. A backup whose metadata cannot be read
// is returned in damaged with the reason.
func (r *Repo) Backups() (done []*Backup, incomplete []string, err error) {
	done, incomplete, _, err = r.allBackups()
	return done, incomplete, err
}

func (r *Repo) allBackups() (done []*Backup, incomplete []string, damaged []Problem, err error) {
	entries, err := os.ReadDir(filepath.Join(r.Dir, "backups"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("archive: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(e.Name(), ".deleting-") {
			continue // DeleteBackup was interrupted: already out of the catalog
		}
		if strings.HasPrefix(e.Name(), incompletePrefix) {
			incomplete = append(incomplete, strings.TrimPrefix(e.Name(), incompletePrefix))
			continue
		}
		b, err := r.Backup(e.Name())
		if err != nil {
			damaged = append(damaged, Problem{e.Name(), err.Error()})
			continue
		}
		done = append(done, b)
	}
	sort.Slice(done, func(i, j int) bool { return done[i].StartLSN < done[j].StartLSN })
	return done, incomplete, damaged, nil
}

// Backup reads one backup's metadata.
func (r *Repo) Backup(id string) (*Backup, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("archive: %q is not a backup ID", id)
	}
	dir := filepath.Join(r.Dir, "backups", id)
	data, err := readBounded(filepath.Join(dir, backupFile), maxSigFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("archive: backup %s not found (run 'clinicctl list' to see the backups)", id)
	}
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	b := &Backup{}
	if err := json.Unmarshal(data, b); err != nil {
		return nil, fmt.Errorf("archive: backup %s: %s is damaged: %w", id, backupFile, err)
	}
	if v, err := readBounded(filepath.Join(dir, verifyFile), 1<<20); err == nil {
		b.Verified = &Verification{}
		if json.Unmarshal(v, b.Verified) != nil {
			b.Verified = nil
		}
	}
	return b, nil
}
