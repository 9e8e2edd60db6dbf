package archive

import (
	"encoding/binary"
	"fmt"

	"filippo.io/age"
)

// segJob is a segment to decrypt and check.
type segJob struct {
	tli     uint32
	segNo   uint64
	name    string
	needEnd int // bytes of this segment a backup needs (for partial segments)
	// next is the next stored segment after a partial one that is not its
	// timeline's last (else empty); nextFresh says a session began there.
	next      string
	nextFresh bool
}

// WAL page header layout (XLogPageHeaderData and XLogLongPageHeaderData in
// PostgreSQL's xlog_internal.h). Decoded by hand: no Go library reads WAL.
const (
	xlpLongHeader = 0x0002
	xlpAllFlags   = 0x000F
	pageHeaderLen = 24
	longHeaderLen = 40
)

// knownMagic are the WAL page magics of PostgreSQL 15 to 18.
var knownMagic = map[uint16]bool{0xD110: true, 0xD113: true, 0xD116: true, 0xD118: true}

// walPlan checks which segments exist where they must and returns the jobs
// that read them. Missing segments are reported here by name.
func (r *Repo) walPlan(rep *Report, backups []*Backup, tls []*Timeline, all bool) []segJob {
	p := newSegPlan(tls)
	firstNeeded := r.planBackups(rep, p, backups)
	for _, tl := range tls {
		r.planTimeline(rep, tl, p, firstNeeded, all)
	}
	return p.list()
}

// segPlan collects the segment reads a check needs: one job per stored
// file, reading as far as the furthest need.
type segPlan struct {
	have map[uint32]map[uint64]SegmentFile // by timeline and segment number
	jobs map[string]*segJob                // by file name
}

// newSegPlan indexes the stored segments, preferring a complete file to a
// partial one of the same segment.
func newSegPlan(tls []*Timeline) *segPlan {
	p := &segPlan{have: map[uint32]map[uint64]SegmentFile{}, jobs: map[string]*segJob{}}
	for _, tl := range tls {
		m := map[uint64]SegmentFile{}
		for _, s := range tl.Segments {
			if prev, ok := m[s.SegNo]; !ok || prev.Partial {
				m[s.SegNo] = s
			}
		}
		p.have[tl.TLI] = m
	}
	return p
}

// want asks for segment segNo of timeline tli to be read through needEnd,
// and reports false when no such segment is stored.
func (p *segPlan) want(tli uint32, segNo uint64, needEnd int) bool {
	s, ok := p.have[tli][segNo]
	if !ok {
		return false
	}
	j := p.jobs[s.Name]
	if j == nil {
		j = &segJob{tli: tli, segNo: segNo, name: s.Name}
		p.jobs[s.Name] = j
	}
	j.needEnd = max(j.needEnd, needEnd)
	return true
}

// has reports whether segment segNo of timeline tli is stored.
func (p *segPlan) has(tli uint32, segNo uint64) bool {
	_, ok := p.have[tli][segNo]
	return ok
}

func (p *segPlan) list() []segJob {
	out := make([]segJob, 0, len(p.jobs))
	for _, j := range p.jobs {
		out = append(out, *j)
	}
	return out
}

// planBackups asks for every segment each backup needs to be consistent,
// reports those missing, and returns the first segment needed on each
// timeline.
func (r *Repo) planBackups(rep *Report, p *segPlan, backups []*Backup) map[uint32]uint64 {
	segSize := r.Info.SegmentSize
	firstNeeded := map[uint32]uint64{}
	for _, b := range backups {
		from, to := uint64(b.StartLSN)/segSize, uint64(b.EndLSN-1)/segSize
		for seg := from; seg <= to; seg++ {
			need := int(segSize)
			if seg == to {
				need = int(uint64(b.EndLSN) - seg*segSize)
			}
			if !p.want(b.Timeline, seg, need) {
				rep.add(segName(b.Timeline, seg, segSize), "WAL segment is missing; backup %s needs it to be consistent", b.ID)
			}
		}
		if f, ok := firstNeeded[b.Timeline]; !ok || from < f {
			firstNeeded[b.Timeline] = from
		}
	}
	return firstNeeded
}

// planTimeline checks one timeline's continuity from the oldest backup's
// start (or its first segment) through its newest segment. A gap is allowed
// only where a streaming session started afresh; it splits the recoverable
// window and is noted.
func (r *Repo) planTimeline(rep *Report, tl *Timeline, p *segPlan, firstNeeded map[uint32]uint64, all bool) {
	if len(tl.Segments) == 0 {
		return
	}
	if tl.TLI > 1 && !tl.HasHistory {
		rep.add(fmt.Sprintf("%08X.history", tl.TLI), "timeline history file is missing; restores on timeline %d cannot follow the switch", tl.TLI)
	}
	first, last := tl.Segments[0].SegNo, tl.Segments[len(tl.Segments)-1].SegNo
	// Every stored segment is read and checked, even one older than any
	// backup; continuity matters from the oldest backup's start.
	for _, s := range tl.Segments {
		p.want(tl.TLI, s.SegNo, 0)
	}
	if f, ok := firstNeeded[tl.TLI]; ok {
		first = f
	} else if !all {
		return
	}
	starts := map[uint64]bool{}
	for _, s := range tl.Starts {
		starts[s] = true
	}
	for seg := first; seg <= last; seg++ {
		if p.want(tl.TLI, seg, 0) {
			r.markPartialTail(tl, p, seg, last, starts)
			continue
		}
		gapEnd := seg
		for gapEnd <= last && !p.want(tl.TLI, gapEnd, 0) {
			gapEnd++
		}
		if starts[gapEnd] {
			rep.Notes = append(rep.Notes, fmt.Sprintf("timeline %d: no WAL from %s to %s (streaming started afresh at %s); point-in-time restore is not possible in between",
				tl.TLI, segName(tl.TLI, seg, r.Info.SegmentSize), segName(tl.TLI, gapEnd-1, r.Info.SegmentSize), segName(tl.TLI, gapEnd, r.Info.SegmentSize)))
		} else {
			for g := seg; g < gapEnd; g++ {
				rep.add(segName(tl.TLI, g, r.Info.SegmentSize), "WAL segment is missing (the WAL before and after it is present)")
			}
		}
		seg = gapEnd
	}
}

// markPartialTail marks the job of a segment stored only partially that
// is not its timeline's last with the next stored segment: whatever its
// partial file does not hold (checkSegment sees how much) is missing.
// (A vault stores every segment as records, so a partial file can hold
// the whole segment.)
func (r *Repo) markPartialTail(tl *Timeline, p *segPlan, seg, last uint64, starts map[uint64]bool) {
	s := p.have[tl.TLI][seg]
	if !s.Partial || seg == last {
		return
	}
	next := seg + 1
	for next < last && !p.has(tl.TLI, next) {
		next++
	}
	j := p.jobs[s.Name]
	j.next, j.nextFresh = segName(tl.TLI, next, r.Info.SegmentSize), starts[next]
}

// partialTail reports the WAL missing after the part of segment j that its
// partial file holds, when WAL goes on after it: noted, like any gap there,
// when streaming started afresh at the next stored segment (a drive that
// was away, a slot that moved on); else a problem, which no healthy stream
// leaves (a restore stops where the partial file ends).
func partialTail(rep *Report, j segJob, valid int) {
	if j.nextFresh {
		rep.note(fmt.Sprintf("timeline %d: no WAL from %s past the %d bytes its partial file holds (streaming started afresh at %s); point-in-time restore is not possible in between",
			j.tli, j.name, valid, j.next))
		return
	}
	rep.add(j.name, "WAL segment is stored only partially (%d bytes), yet the WAL goes on at %s: the rest of it is missing, and a restore stops where its partial file ends",
		valid, j.next)
}

// needs reports whether the problem object is a segment backup b needs.
func (r *Repo) needs(b *Backup, obj string) bool {
	if len(obj) < 24 {
		return false
	}
	tli, seg, ok := parseSegName(obj[:24], r.Info.SegmentSize)
	if !ok || tli != b.Timeline {
		return false
	}
	return seg >= uint64(b.StartLSN)/r.Info.SegmentSize && seg <= uint64(b.EndLSN-1)/r.Info.SegmentSize
}

// checkSegment decrypts a segment and checks its page headers.
func (r *Repo) checkSegment(j segJob, rep *Report, ids []age.Identity, buf *segBuf) {
	// The state is read before the segment: a stream may still be writing
	// (the box verifies while it streams), and every position the state
	// shows was fsynced into the partial file before the state was written.
	st, stOK := r.WALState()
	sd, err := r.readSegment(j.tli, j.segNo, ids, buf.sized(r.Info.SegmentSize), &buf.z)
	if err != nil {
		rep.add(j.name, "%v", err)
		return
	}
	rep.count(0, int64(sd.Valid))
	if sd.Unsigned != "" {
		rep.note("UNSIGNED: " + sd.Unsigned)
	}
	if sd.Partial && j.next != "" && sd.Valid < len(sd.Data) {
		partialTail(rep, j, sd.Valid)
	}
	if sd.Partial && sd.Valid < j.needEnd {
		rep.add(j.name, "partial segment holds %d bytes; a backup needs %d", sd.Valid, j.needEnd)
	}
	if stOK && sd.Partial && st.Timeline == j.tli && uint64(st.Flushed)/r.Info.SegmentSize == j.segNo {
		if want := int(uint64(st.Flushed) % r.Info.SegmentSize); sd.Valid < want {
			rep.add(j.name, "partial segment holds %d bytes, but %d were stored and reported flushed (truncated)", sd.Valid, want)
		}
	}
	if msg := r.checkPages(sd, j); msg != "" {
		rep.add(j.name, "%s", msg)
	}
}

// checkPages checks each page header of the valid part of a segment: magic,
// flags, timeline, page address; and the long header of the first page.
func (r *Repo) checkPages(sd *SegmentData, j segJob) string {
	d := sd.Data
	if sd.Valid < longHeaderLen {
		return ""
	}
	blck, msg := r.checkLongHeader(d)
	if msg != "" {
		return msg
	}
	magic := binary.LittleEndian.Uint16(d)
	base := j.segNo * r.Info.SegmentSize
	prevTLI := uint32(0)
	zeroFrom := -1 // after a WAL switch the rest of the segment is zero pages
	for off := 0; off+pageHeaderLen <= sd.Valid; off += blck {
		p := d[off:]
		if isZero(p[:pageHeaderLen]) {
			if zeroFrom < 0 {
				zeroFrom = off
			}
			continue
		}
		if zeroFrom >= 0 {
			return fmt.Sprintf("page at offset %d follows zero pages from offset %d", off, zeroFrom)
		}
		tli, msg := checkPage(p, off, magic, j.tli, prevTLI, base+uint64(off))
		if msg != "" {
			return msg
		}
		prevTLI = tli
	}
	return ""
}

// checkLongHeader checks the first page's long header and returns the
// page size it gives.
func (r *Repo) checkLongHeader(d []byte) (blck int, msg string) {
	magic := binary.LittleEndian.Uint16(d)
	if !knownMagic[magic] {
		return 0, fmt.Sprintf("page 0: not a WAL page (magic %#04x)", magic)
	}
	info := binary.LittleEndian.Uint16(d[2:])
	if info&xlpLongHeader == 0 {
		return 0, "page 0 lacks the long header"
	}
	if sys := binary.LittleEndian.Uint64(d[24:]); fmt.Sprint(sys) != r.Info.SystemID {
		return 0, fmt.Sprintf("segment belongs to database system %d, not %s", sys, r.Info.SystemID)
	}
	if ss := binary.LittleEndian.Uint32(d[32:]); uint64(ss) != r.Info.SegmentSize {
		return 0, fmt.Sprintf("segment size in header is %d", ss)
	}
	blck = int(binary.LittleEndian.Uint32(d[36:]))
	if blck < 1024 || blck > 65536 || blck&(blck-1) != 0 {
		return 0, fmt.Sprintf("page size in header is %d", blck)
	}
	return blck, ""
}

// checkPage checks one page header that is not zero: its magic and flags,
// a timeline no higher than the segment's and no lower than the page
// before's, and its own address. It returns the page's timeline.
func checkPage(p []byte, off int, magic uint16, segTLI, prevTLI uint32, addr uint64) (uint32, string) {
	if binary.LittleEndian.Uint16(p) != magic || binary.LittleEndian.Uint16(p[2:])&^xlpAllFlags != 0 {
		return 0, fmt.Sprintf("page at offset %d: bad header", off)
	}
	tli := binary.LittleEndian.Uint32(p[4:])
	if tli > segTLI || tli < prevTLI {
		return 0, fmt.Sprintf("page at offset %d: timeline %d out of order", off, tli)
	}
	if got := binary.LittleEndian.Uint64(p[8:]); got != addr {
		return 0, fmt.Sprintf("page at offset %d: page address %X, expected %X", off, got, addr)
	}
	return tli, ""
}

func isZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}
