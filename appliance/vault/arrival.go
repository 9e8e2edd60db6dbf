package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"os"
	"path/filepath"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// When a backup is committed the vault writes its own arrival record: what
// it checked itself (each stored file's size and SHA-256 as it arrived,
// where its durable WAL stood, whether the backup's claimed WAL span is
// consistent with WAL it holds). Retention reads only these records, never
// the box's backup.json: a backup whose claims the vault could not confirm
// never causes WAL or older backups to be deleted. The records live in the
// namespace directory, outside the repository, where no route writes.

const arrivalsDir = "arrivals"

// Arrival is the vault's record of one committed backup.
type Arrival struct {
	ID string `json:"id"`
	// Time is the vault's clock at the commit; retention ages backups by
	// it, not by the times the box claims.
	Time  time.Time     `json:"time"`
	Node  string        `json:"node"`
	Files []ArrivedFile `json:"files"`
	// WAL is where the vault's durable WAL stood at the commit.
	WAL wire.Position `json:"wal"`
	// Claimed is the WAL span backup.json claims; on its own it decides
	// nothing.
	Claimed Span `json:"claimed"`
	// Parent is the backup an incremental one builds on ("" for a full
	// one); retention keeps it while this one is kept.
	Parent string `json:"parent,omitempty"`
	// Checks are the checks of the claims, each with its outcome.
	Checks []CheckResult `json:"checks"`
	// Verified is the span every check confirmed, nil while one has not:
	// the only span retention acts on.
	Verified *Span `json:"verified,omitempty"`
}

// ArrivedFile is a stored file as the vault hashed it.
type ArrivedFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Span is the WAL a base backup needs: from its start to its end.
type Span struct {
	Timeline    uint32      `json:"timeline"`
	Start       archive.LSN `json:"start_lsn"`
	EndTimeline uint32      `json:"end_timeline"`
	End         archive.LSN `json:"end_lsn"`
}

// CheckResult is one check of a backup's claims.
type CheckResult struct {
	Check  string    `json:"check"`
	Time   time.Time `json:"time"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail,omitempty"`
}

// A claimCheck confirms a backup's claimed span from something the vault
// holds or can verify itself, returning the span it confirmed, or why it
// cannot (a notApplicable error passes, saying why). b.mu is held.
type claimCheck struct {
	name string
	run  func(b *box, a *Arrival) (Span, error)
}

var claimChecks = []claimCheck{
	{"wal", func(b *box, a *Arrival) (Span, error) { return b.walSpan(a.Claimed) }},
	{"signature", (*box).signedSpan},
}

// confirm runs every check on a's claims and sets a.Verified when all of
// them confirm the claimed span.
func (b *box) confirm(a *Arrival, now time.Time) {
	ok := true
	for _, c := range claimChecks {
		got, err := c.run(b, a)
		var na notApplicable
		skipped := errors.As(err, &na)
		res := CheckResult{Check: c.name, Time: now.UTC(), OK: (err == nil || skipped) && got == a.Claimed}
		switch {
		case skipped:
			res.Detail = string(na)
		case err != nil:
			res.Detail = err.Error()
		case got != a.Claimed:
			res.Detail = fmt.Sprintf("confirms %+v, not the claimed %+v", got, a.Claimed)
		}
		a.Checks = append(a.Checks, res)
		ok = ok && res.OK
	}
	if ok {
		s := a.Claimed
		a.Verified = &s
	}
}

// walSpan confirms a span from the WAL the vault holds: the segment of its
// start is stored on its timeline, and durable WAL reaches its end.
func (b *box) walSpan(s Span) (Span, error) {
	size := b.repo.Info.SegmentSize
	switch {
	case s.Timeline == 0 || s.EndTimeline < s.Timeline:
		return s, fmt.Errorf("timelines %d to %d are not a span", s.Timeline, s.EndTimeline)
	case s.EndTimeline == s.Timeline && s.End < s.Start:
		return s, fmt.Errorf("ends at %s, before its start %s", s.End, s.Start)
	case !b.have || b.cur.tli < s.EndTimeline || (b.cur.tli == s.EndTimeline && b.durable() < s.End):
		return s, fmt.Errorf("ends at %s on timeline %d, past the WAL the vault holds (%+v)", s.End, s.EndTimeline, b.position())
	}
	held, err := b.holdsSegment(s.Timeline, uint64(s.Start)/size)
	if err != nil || held {
		return s, err
	}
	return s, fmt.Errorf("starts at %s on timeline %d, in a segment the vault does not hold", s.Start, s.Timeline)
}

// holdsSegment reports whether the vault holds a segment: on its disk, or
// evicted from there and in the bucket. b.mu is held.
func (b *box) holdsSegment(tli uint32, segNo uint64) (bool, error) {
	tls, err := b.repo.Timelines()
	if err != nil {
		return false, err
	}
	for _, tl := range tls {
		for _, seg := range tl.Segments {
			if tl.TLI == tli && seg.SegNo == segNo {
				return true, nil
			}
		}
	}
	ev, err := b.evictedFiles()
	if err != nil {
		return false, err
	}
	for _, ef := range ev {
		if ef.TLI == tli && ef.TLI != 0 && ef.SegNo == segNo {
			return true, nil
		}
	}
	return false, nil
}

func arrivalRel(id string) string { return filepath.Join(arrivalsDir, id+".json") }

func (b *box) writeArrival(a *Arrival) error {
	data, err := json.MarshalIndent(a, "", "\t")
	if err != nil {
		return err
	}
	return b.writeFile(arrivalRel(a.ID), data)
}

// arrival reads a backup's record. A backup committed before the vault
// kept records has none: it is aged by its directory's modification time
// (when its last file arrived) and confirms nothing.
func (b *box) arrival(id string) (*Arrival, error) {
	data, err := b.root.ReadFile(arrivalRel(id))
	if errors.Is(err, os.ErrNotExist) {
		fi, err := b.root.Stat(inRepo(filepath.Join("backups", id)))
		if err != nil {
			return nil, fmt.Errorf("vault: backup %s: %w", id, err)
		}
		return &Arrival{ID: id, Time: fi.ModTime(), Checks: []CheckResult{{Check: "record", Detail: "committed before the vault kept arrival records"}}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: arrival record of %s: %w", id, err)
	}
	var a Arrival
	if err := json.Unmarshal(data, &a); err != nil || a.ID != id {
		return nil, fmt.Errorf("vault: arrival record of %s is damaged: %v", id, err)
	}
	return &a, nil
}
