package offsite

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// sink stores streamed WAL in the vault: it is the postgres.WALSink of the
// offsite stream. It keeps only what the vault does not hold yet, at most
// about a record (maxRecord): each Flush, and Write whenever that much is
// waiting, seals it as one record of the repository format and sends it.
// Flush returns only what the vault has acknowledged as fsynced, which is
// all the server's slot ever hears. (It kept the whole segment, 16 MiB for
// the life of the stream, which no record needed.)
type sink struct {
	s   *Shipper
	ctx context.Context
	// stop is the session's own context: once it is done every Flush
	// sends, so a stopping stream reports its last WAL.
	stop   context.Context
	sealer *archive.WALSealer
	size   uint64

	tli     uint32
	seg     uint64
	pending []byte // the segment's bytes from sent to fill
	fill    int    // bytes of the segment received
	sent    int    // bytes of the segment durable at the vault
	began   bool
	// lastSend is when the last record was sent, on clock (nil: the real
	// clock, whatever the box's: it paces the link).
	lastSend time.Time
	clock    func() time.Time
}

func (k *sink) now() time.Time {
	if k.clock != nil {
		return k.clock()
	}
	return time.Now()
}

// maxRecord is how much WAL waits for the vault before Write sends it
// without waiting for the stream's Flush: while a backlog drains, a
// record per MiB instead of one per segment.
const maxRecord = 1 << 20

var _ postgres.WALSink = (*sink)(nil)

func (k *sink) segStart() archive.LSN { return archive.LSN(k.seg * k.size) }

// Resume asks the vault where its durable WAL ends.
func (k *sink) Resume() (uint32, archive.LSN, bool, error) {
	var p wire.Position
	if err := k.s.call(k.ctx, "GET", "/v1/wal", nil, nil, &p); err != nil {
		return 0, 0, false, err
	}
	if !p.Exists {
		return 0, 0, false, nil
	}
	k.s.ack(p.Timeline, p.Durable)
	return p.Timeline, p.Durable - p.Durable%archive.LSN(k.size), true, nil
}

// Begin starts a session; when the vault already holds part of the
// segment, only the rest is sent.
func (k *sink) Begin(tli uint32, lsn archive.LSN) error {
	q := url.Values{"tli": {strconv.FormatUint(uint64(tli), 10)}, "lsn": {strconv.FormatUint(uint64(lsn), 10)}}
	var p wire.Position
	if err := k.s.call(k.ctx, "POST", "/v1/wal/begin", q, nil, &p); err != nil {
		return err
	}
	k.tli, k.seg, k.fill, k.sent, k.began = tli, uint64(lsn)/k.size, 0, 0, true
	k.pending = k.pending[:0]
	if p.Timeline == tli && p.Durable > lsn && p.Durable < lsn+archive.LSN(k.size) {
		k.sent = int(p.Durable - lsn)
	}
	k.s.ack(tli, lsn+archive.LSN(k.sent))
	return nil
}

func (k *sink) Write(lsn archive.LSN, data []byte) error {
	if want := k.segStart() + archive.LSN(k.fill); lsn != want {
		return fmt.Errorf("offsite: WAL at %s does not follow %s", lsn, want)
	}
	k.s.lag.seen(lsn+archive.LSN(len(data)), k.s.now())
	for len(data) > 0 {
		n := min(len(data), int(k.size)-k.fill)
		k.take(data[:n])
		data = data[n:]
		if k.fill < int(k.size) && len(k.pending) < maxRecord {
			continue
		}
		if _, err := k.send(); err != nil {
			return err
		}
		if k.fill == int(k.size) {
			k.seg++
			k.fill, k.sent = 0, 0
		}
	}
	return nil
}

// take adds p to the segment at fill, keeping only what the vault does not
// hold (a restreamed segment starts before what it holds).
func (k *sink) take(p []byte) {
	start := k.fill
	k.fill += len(p)
	if k.fill <= k.sent {
		return
	}
	if start < k.sent {
		p = p[k.sent-start:]
	}
	k.pending = append(k.pending, p...)
}

// Flush sends what is new in the segment as one sealed record, unless the
// last record went less than the cap's record gap ago (throttle.recordGap):
// then the WAL waits for a later flush, which sends it with whatever came
// meanwhile as one record.
func (k *sink) Flush() (archive.LSN, error) {
	if k.fill > k.sent && k.stop.Err() == nil && k.now().Sub(k.lastSend) < k.s.throttle.recordGap() {
		return k.segStart() + archive.LSN(min(k.sent, k.fill)), nil
	}
	return k.send()
}

// maxRecordWAL bounds the WAL of one record: a record is one request,
// which must finish within reqTimeout; 256 KiB takes at most 16 s at
// 128 kbit/s even if it does not compress, and the vault's
// acknowledgements (and the slot) move on record by record while a
// backlog drains. Its overhead is then under half a percent.
const maxRecordWAL = 256 << 10

// send sends what is new in the segment, in records of at most
// maxRecordWAL bytes of WAL.
func (k *sink) send() (archive.LSN, error) {
	for k.fill > k.sent {
		k.lastSend = k.now()
		if err := k.sendRecord(min(k.fill, k.sent+maxRecordWAL)); err != nil {
			return 0, err
		}
		k.s.ack(k.tli, k.segStart()+archive.LSN(k.sent))
	}
	k.s.ack(k.tli, k.segStart()+archive.LSN(k.sent))
	// While a segment is restreamed, the vault may hold more of it than
	// this session has received; report only what was received.
	return k.segStart() + archive.LSN(min(k.sent, k.fill)), nil
}

// sendRecord sends the segment's bytes from k.sent to end as one sealed
// record.
func (k *sink) sendRecord(end int) error {
	n := end - k.sent
	rec, err := k.sealer.Record(k.tli, k.seg, k.sent, k.pending[:n])
	if err != nil {
		return err
	}
	q := url.Values{
		"tli": {strconv.FormatUint(uint64(k.tli), 10)}, "seg": {strconv.FormatUint(k.seg, 10)},
		"offset": {strconv.Itoa(k.sent)}, "length": {strconv.Itoa(end - k.sent)},
	}
	var p wire.Position
	k.s.gate.begin() // a base upload waits while WAL goes
	k.s.throttle.spend(len(rec))
	err = k.s.call(k.ctx, "POST", "/v1/wal/record", q, rec, &p)
	k.s.gate.end()
	if c, prob := code(err); c == "replayed" && prob.Position != nil && prob.Position.Timeline == k.tli &&
		prob.Position.Durable >= k.segStart()+archive.LSN(end) {
		err = nil // stored before; the answer was lost on the way
	}
	if err != nil {
		return err
	}
	k.s.wire.Add(int64(len(rec)))
	k.s.raw.Add(int64(n))
	k.sent, k.pending = end, append(k.pending[:0], k.pending[n:]...)
	return nil
}

func (k *sink) History(tli uint32, content []byte) error {
	sealed, err := k.sealer.History(tli, content)
	if err != nil {
		return err
	}
	return k.s.call(k.ctx, "PUT", "/v1/wal/history/"+strconv.FormatUint(uint64(tli), 10), nil, sealed, nil)
}

// SwitchTimeline ends the current timeline; its last segment stays partial.
func (k *sink) SwitchTimeline(next uint32, end archive.LSN) error {
	_, err := k.send()
	return err
}
