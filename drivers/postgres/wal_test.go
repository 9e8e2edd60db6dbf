package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// memSink keeps streamed WAL in memory and records each flush.
type memSink struct {
	mu      sync.Mutex
	start   postgres.LSN
	data    []byte
	flushes []postgres.LSN
	flush   chan struct{} // signalled after a flush, if not nil
}

func (m *memSink) Resume() (uint32, postgres.LSN, bool, error) { return 0, 0, false, nil }
func (m *memSink) Begin(tli uint32, lsn postgres.LSN) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.start, m.data = lsn, nil
	return nil
}
func (m *memSink) Write(lsn postgres.LSN, d []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = append(m.data, d...)
	return nil
}
func (m *memSink) Flush() (postgres.LSN, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := m.start + postgres.LSN(len(m.data))
	m.flushes = append(m.flushes, end)
	select {
	case m.flush <- struct{}{}:
	default:
	}
	return end, nil
}
func (m *memSink) History(uint32, []byte) error              { return nil }
func (m *memSink) SwitchTimeline(uint32, postgres.LSN) error { return nil }
func (m *memSink) flushed() postgres.LSN {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.flushes) == 0 {
		return 0
	}
	return m.flushes[len(m.flushes)-1]
}

// A caught-up stream is woken by the socket only once a good amount of
// WAL waits (SO_RCVLOWAT), so a single small commit must still be stored
// and flushed within about a flush interval, and a large burst must arrive
// whole: neither waits for the next standby status.
func TestStreamFlushesSmallAndLargeWAL(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := postgres.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sink := &memSink{flush: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- conn.StreamWAL(ctx, sink, postgres.StreamOptions{Slot: "flush_test",
			FlushInterval: 100 * time.Millisecond, StatusInterval: time.Hour})
	}()
	for _, tc := range []struct {
		name string
		sql  string
	}{
		{"one small commit", "CREATE TABLE small (x int); INSERT INTO small VALUES (1)"},
		{"a large burst", "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 100000) g"},
		{"one more small commit", "INSERT INTO small VALUES (2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.MustExec(t, tc.sql)
			want, err := c.CurrentLSN(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			// The bound only tells a flush that comes from a standby
			// status (an hour away here) from one that does not; it is
			// generous because a drive's fsync on a busy machine can take
			// seconds.
			start := time.Now()
			timeout := time.After(time.Minute)
			for sink.flushed() < want {
				select {
				case <-sink.flush:
				case <-timeout:
					t.Fatalf("flushed %s after %s; want %s", sink.flushed(), time.Since(start), want)
				}
			}
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("StreamWAL after cancel = %v; want nil", err)
	}
}

// A stream given a position to stop at ends as soon as WAL up to it has
// arrived and is flushed, without waiting for a flush tick (an hour here):
// clinicctl stream --endpos drains a backlog and exits.
func TestStreamStopsAtPosition(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.MustExec(t, "CREATE TABLE t AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 50000) g")
	stop, err := c.CurrentLSN(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "INSERT INTO t SELECT g, 'after the stop' FROM generate_series(1, 1000) g")
	conn, err := postgres.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sink := &memSink{}
	var flushTLI []uint32
	err = conn.StreamWAL(ctx, sink, postgres.StreamOptions{Slot: "stop_test", StopAt: stop,
		FlushInterval: time.Hour, StatusInterval: time.Hour,
		OnFlush: func(tli uint32, _ postgres.LSN) { flushTLI = append(flushTLI, tli) }})
	if err != nil {
		t.Fatalf("StreamWAL = %v; want nil", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("StreamWAL returned only when its context ended, not at %s", stop)
	}
	if got := sink.flushed(); got < stop {
		t.Errorf("flushed up to %s; want at least %s", got, stop)
	}
	if len(flushTLI) == 0 || flushTLI[len(flushTLI)-1] != 1 {
		t.Errorf("flushes reported on timelines %v; want the last on timeline 1", flushTLI)
	}
}

// backlogSink is a memSink that records what the stream says about its
// backlog.
type backlogSink struct {
	memSink
	behind []bool
}

func (b *backlogSink) SetBehind(behind bool) { b.behind = append(b.behind, behind) }

// A stream that starts far behind the server tells its sink, which then
// compresses faster, and tells it again once caught up.
func TestStreamTellsSinkWhenBehind(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := postgres.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateSlot(ctx, "backlog_test", false); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLE t AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 200000) g")
	stop, err := c.CurrentLSN(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	sink := &backlogSink{}
	if err := conn.StreamWAL(ctx, sink, postgres.StreamOptions{Slot: "backlog_test", StopAt: stop}); err != nil {
		t.Fatalf("StreamWAL = %v; want nil", err)
	}
	if len(sink.behind) < 2 || !sink.behind[0] || sink.behind[len(sink.behind)-1] {
		t.Errorf("sink told %v; want behind first (tens of MB of backlog), caught up last", sink.behind)
	}
}
