package archive

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"filippo.io/age"
)

// Problem is one thing wrong in a repository, named by the object it is in.
type Problem struct {
	Object string `json:"object"` // a backup ID and file, or a WAL segment name
	What   string `json:"what"`
}

func (p Problem) String() string { return p.Object + ": " + p.What }

// Report is the result of a verification.
type Report struct {
	Problems []Problem      `json:"problems"`
	Notes    []string       `json:"notes,omitempty"`
	Backups  []BackupReport `json:"backups"`
	Segments int            `json:"segments"`
	Stored   int64          `json:"stored_bytes"` // bytes read from the repository
	Raw      int64          `json:"raw_bytes"`    // bytes checked after decryption and decompression
	Duration time.Duration  `json:"duration"`
	mu       sync.Mutex
}

// BackupReport is one backup's part of a report.
type BackupReport struct {
	ID       string    `json:"id"`
	OK       bool      `json:"ok"`
	Files    int       `json:"files"`
	Problems []Problem `json:"problems,omitempty"`
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) add(obj, format string, args ...any) {
	r.mu.Lock()
	r.Problems = append(r.Problems, Problem{obj, fmt.Sprintf(format, args...)})
	r.mu.Unlock()
}

// note adds a note once, however many objects it applies to.
func (r *Report) note(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.Notes, text) {
		r.Notes = append(r.Notes, text)
	}
}

func (r *Report) count(stored, raw int64) {
	r.mu.Lock()
	r.Stored += stored
	r.Raw += raw
	r.mu.Unlock()
}

// VerifyOptions choose what Verify checks.
type VerifyOptions struct {
	Identities []age.Identity
	Backup     string // only this backup and the WAL it needs; "" for all
	Parallel   int    // workers, each holding a segment (16 MiB); 0 means GOMAXPROCS
	Record     bool   // write each backup's result to its verify.json
	Now        func() time.Time
}

// Verify checks a repository without any PostgreSQL program: every backup's
// manifest checksum, every file's size and checksum (streaming the encrypted
// archives without extracting them), missing and extra files, and WAL
// continuity from each backup's start through the newest segment on every
// timeline, with segment page headers checked.
func (r *Repo) Verify(ctx context.Context, opt VerifyOptions) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	backups, incomplete, damaged, err := r.allBackups()
	if err != nil {
		return nil, err
	}
	rep.Problems = append(rep.Problems, damaged...)
	for _, id := range incomplete {
		rep.Notes = append(rep.Notes, fmt.Sprintf("backup %s is incomplete (an interrupted run left it; it is not counted as a backup)", id))
	}
	if opt.Backup != "" {
		b, err := r.Backup(opt.Backup)
		if err != nil {
			return nil, err
		}
		backups = []*Backup{b}
	}
	tls, err := r.Timelines()
	if err != nil {
		return nil, err
	}
	plan := r.walPlan(rep, backups, tls, opt.Backup == "")
	jobs := make(chan func(*segBuf), 64)
	var wg sync.WaitGroup
	for range cmp.Or(max(opt.Parallel, 0), runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A worker's buffers serve all its jobs: a segment is 16 MiB,
			// and one allocated per segment was most of what the box's
			// service allocated (and so most of its resident memory).
			buf := new(segBuf)
			for j := range jobs {
				if ctx.Err() == nil {
					j(buf)
				}
			}
		}()
	}
	brs := make([]*BackupReport, len(backups))
	var states []*backupState
	for i, b := range backups {
		brs[i] = &BackupReport{ID: b.ID}
		states = append(states, r.queueBackup(b, brs[i], rep, opt.Identities, jobs))
	}
	for _, seg := range plan {
		seg := seg
		jobs <- func(buf *segBuf) { r.checkSegment(seg, rep, opt.Identities, buf) }
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Segments = len(plan)
	for _, st := range states {
		st.missing(rep)
	}
	sort.Slice(rep.Problems, func(i, j int) bool { return rep.Problems[i].Object < rep.Problems[j].Object })
	rep.Duration = time.Since(start)
	r.finishBackups(rep, backups, brs, opt)
	return rep, nil
}

// finishBackups assigns problems to backups and records the results.
func (r *Repo) finishBackups(rep *Report, backups []*Backup, brs []*BackupReport, opt VerifyOptions) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	for i, b := range backups {
		br := brs[i]
		for _, p := range rep.Problems {
			if len(p.Object) >= len(b.ID) && p.Object[:len(b.ID)] == b.ID {
				br.Problems = append(br.Problems, p)
			}
		}
		// WAL problems inside the range a backup needs fail that backup too.
		for _, p := range rep.Problems {
			if r.needs(b, p.Object) {
				br.Problems = append(br.Problems, p)
			}
		}
		br.OK = len(br.Problems) == 0
		rep.Backups = append(rep.Backups, *br)
		if opt.Record {
			v := Verification{Time: now().UTC(), OK: br.OK, Bytes: rep.Stored, Seconds: rep.Duration.Seconds()}
			for _, p := range br.Problems {
				v.Problems = append(v.Problems, p.String())
			}
			r.SetVerification(b.ID, v)
		}
	}
}
