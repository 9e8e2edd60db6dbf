package archive

import (
	"fmt"
	"path/filepath"
	"time"
)

// WALRange is a run of consecutive stored segments on one timeline.
type WALRange struct {
	Timeline uint32    `json:"timeline"`
	First    string    `json:"first_segment"`
	Last     string    `json:"last_segment"`
	Start    LSN       `json:"start_lsn"`
	End      LSN       `json:"end_lsn"` // end of stored WAL in this run
	Segments int       `json:"segments"`
	Bytes    int64     `json:"stored_bytes"`
	EndTime  time.Time `json:"end_time"` // when the last of it was stored
}

// Window is a span of time to which the repository can restore: from the
// end of a base backup through the end of the WAL that follows it.
type Window struct {
	Timeline uint32    `json:"timeline"`
	Backup   string    `json:"backup"`
	From     LSN       `json:"from_lsn"`
	FromTime time.Time `json:"from_time"`
	To       LSN       `json:"to_lsn"`
	ToTime   time.Time `json:"to_time"`
}

// Summary is what 'clinicctl list' shows.
type Summary struct {
	Info       Info       `json:"repository"`
	Backups    []*Backup  `json:"backups"`
	Incomplete []string   `json:"incomplete_backups,omitempty"`
	WAL        []WALRange `json:"wal"`
	Windows    []Window   `json:"recoverable"`
}

// Summarize lists backups, WAL runs per timeline and the recoverable
// windows, from file names and metadata alone (no key needed).
func (r *Repo) Summarize() (*Summary, error) {
	s := &Summary{Info: r.Info}
	var err error
	if s.Backups, s.Incomplete, err = r.Backups(); err != nil {
		return nil, err
	}
	tls, err := r.Timelines()
	if err != nil {
		return nil, err
	}
	state, hasState := r.WALState()
	for _, tl := range tls {
		s.WAL = append(s.WAL, r.runs(tl, state, hasState)...)
	}
	hasHistory := map[uint32]bool{}
	for _, tl := range tls {
		hasHistory[tl.TLI] = tl.HasHistory
	}
	for _, b := range s.Backups {
		for _, run := range s.WAL {
			if run.Timeline == b.Timeline && run.Start <= b.StartLSN && run.End >= b.EndLSN {
				w := Window{Timeline: b.Timeline, Backup: b.ID, From: b.EndLSN, FromTime: b.End, To: run.End, ToTime: run.EndTime}
				s.Windows = append(s.Windows, s.follow(w, hasHistory))
			}
		}
	}
	return s, nil
}

// follow extends a window across timeline switches: a later timeline whose
// history is stored and whose WAL starts where this window's WAL ends
// continues it (recovery follows the switch).
func (s *Summary) follow(w Window, hasHistory map[uint32]bool) Window {
	for {
		next := false
		for _, run := range s.WAL {
			if run.Timeline > w.Timeline && hasHistory[run.Timeline] && run.Start <= w.To && run.End > w.To {
				w.Timeline, w.To, w.ToTime = run.Timeline, run.End, run.EndTime
				next = true
			}
		}
		if !next {
			return w
		}
	}
}

func (r *Repo) runs(tl *Timeline, state WALState, hasState bool) []WALRange {
	size := r.Info.SegmentSize
	var out []WALRange
	var cur *WALRange
	prev := uint64(0)
	for _, seg := range tl.Segments {
		if cur != nil && seg.SegNo == prev {
			if !seg.Partial { // the complete file of a segment wins over its partial
				cur.End = LSN((seg.SegNo + 1) * size)
			}
			continue
		}
		if cur == nil || seg.SegNo != prev+1 {
			out = append(out, WALRange{Timeline: tl.TLI, First: seg.Name, Start: LSN(seg.SegNo * size)})
			cur = &out[len(out)-1]
		}
		cur.Last, cur.Segments, cur.EndTime = seg.Name, cur.Segments+1, seg.ModTime
		cur.Bytes += seg.Size
		cur.End = LSN((seg.SegNo + 1) * size)
		if seg.Partial {
			cur.End = LSN(seg.SegNo * size)
			if hasState && state.Timeline == tl.TLI && uint64(state.Flushed)/size == seg.SegNo {
				cur.End, cur.EndTime = state.Flushed, state.Time
			}
		}
		prev = seg.SegNo
	}
	return out
}

// SaveDrill stores a restore drill's report files (name -> contents) under
// drills/ in the repository, each atomically.
func (r *Repo) SaveDrill(files map[string][]byte) error {
	dir := filepath.Join(r.Dir, "drills")
	if err := mkdirAll(dir); err != nil {
		return err
	}
	for name, data := range files {
		if filepath.Base(name) != name {
			return fmt.Errorf("archive: bad report name %q", name)
		}
		if err := writeFileAtomic(filepath.Join(dir, name), data); err != nil {
			return err
		}
	}
	return nil
}
