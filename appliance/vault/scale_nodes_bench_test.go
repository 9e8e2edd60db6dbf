package vault

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/appliance/vault/vaultbench"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// The two-node phase of TestVaultScaleBenchmark: two vault nodes on one
// bucket share the boxes, half each, leases on, and node 0 is killed
// halfway: from then on it answers nothing (answers in flight are lost,
// as a SIGKILL loses them) and its offload stops. Its boxes go to node
// 1, which answers "moved" until node 0's lease on each runs out, then
// takes the box over, reading it back from the bucket; each box then
// asks where node 1 stands and sends again from there what the bucket
// lacks, all of it at once, as a box catching up does.

// scaleNode is one vault node of the two-node phase.
type scaleNode struct {
	v    *Vault
	dead atomic.Bool
	stop context.CancelFunc // ends its offload
}

var errDead = errors.New("the vault node is dead")

func (n *scaleNode) call(peer, method, target string, body []byte, out any) error {
	if n.dead.Load() {
		return errDead
	}
	err := callVault(n.v, peer, method, target, body, out)
	if n.dead.Load() {
		return errDead // killed while it answered: the answer never left
	}
	return err
}

// twoNodeRig is the phase's nodes, records and clock marks.
type twoNodeRig struct {
	nodes   [2]*scaleNode
	records [][]byte
	info    []byte
	begin   time.Time
	killAt  atomic.Pointer[time.Time] // nil until the kill
}

// movingBox is one box of the phase and what it measured.
type movingBox struct {
	r       *twoNodeRig
	peer    string
	node    int  // the node it sends to
	synced  bool // it knows where its node stands
	next    int  // the next record to send
	acked   int  // records acknowledged, from 0 on, at most
	refused int
	before  []time.Duration
	after   []time.Duration
	back    time.Duration // from the kill to its first acknowledgement by node 1, if it moved
	lastErr error         // the last refusal
}

// sync asks the node where it stands and begins the segment there.
func (m *movingBox) sync() error {
	n := m.r.nodes[m.node]
	var pos wire.Position
	if err := n.call(m.peer, "GET", "/v1/wal", nil, &pos); err != nil {
		return err
	}
	if err := n.call(m.peer, "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil); err != nil {
		return err
	}
	m.next, m.synced = int(pos.Durable)/scaleRecord, true
	return nil
}

// tick sends every record due by tick from where the box stands.
func (m *movingBox) tick(tick int) {
	if !m.synced {
		if err := m.sync(); err != nil {
			m.fail(err)
			return
		}
	}
	for ; m.next <= tick && m.next < len(m.r.records); m.next++ {
		t0 := time.Now()
		err := m.r.nodes[m.node].call(m.peer, "POST", fmt.Sprintf("/v1/wal/record?tli=1&seg=0&offset=%d&length=%d", m.next*scaleRecord, scaleRecord), m.r.records[m.next], nil)
		if err != nil {
			m.fail(err)
			return
		}
		m.acked = max(m.acked, m.next+1)
		if k := m.r.killAt.Load(); k != nil && t0.After(*k) {
			m.after = append(m.after, time.Since(t0))
			if m.node == 1 && m.back == 0 && m.moved() {
				m.back = time.Since(*k)
			}
		} else {
			m.before = append(m.before, time.Since(t0))
		}
	}
}

// moved reports whether the box started on the node that was killed.
func (m *movingBox) moved() bool { return m.home() == 0 }

// home is the node a box starts on: even boxes on node 0.
func (m *movingBox) home() int {
	var i int
	fmt.Sscanf(m.peer, "box%d:1", &i)
	return i % 2
}

// fail counts a refusal; a dead node sends the box to the other one.
func (m *movingBox) fail(err error) {
	m.refused++
	m.synced, m.lastErr = false, err
	if errors.Is(err, errDead) {
		m.node = 1
	}
}

// run creates the box's repository on its home node and sends a record a
// second until ctx ends.
func (m *movingBox) run(ctx context.Context, start time.Time) error {
	if err := m.r.nodes[m.node].call(m.peer, "PUT", "/v1/repo", m.r.info, nil); err != nil {
		return err
	}
	for tick := 0; ; tick++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(start.Add(time.Duration(tick) * time.Second))):
		}
		m.tick(tick)
	}
}

// twoNodePhase runs the phase for d with leases of ttl and reports it.
func twoNodePhase(t *testing.T, boxes int, d, ttl time.Duration) vaultbench.TwoNodes {
	srv := storetest.StartVersityGW(t, storetest.Options{})
	defer srv.Kill()
	st := &requests{Store: srv.Open(t)}
	ps := scalePeers(boxes)
	r := &twoNodeRig{}
	r.info, r.records = sealScaleRecords(t, int(d/time.Second)+1)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var offloads sync.WaitGroup
	for i := range r.nodes {
		v := newScaleVault(t, ps, Config{Node: fmt.Sprintf("node%d", i), LeaseTTL: ttl}, st)
		defer v.Close()
		octx, stop := context.WithCancel(ctx)
		r.nodes[i] = &scaleNode{v: v, stop: stop}
		offloads.Go(func() { offloadEvery(octx, v, scaleOffload) })
	}
	ms := make([]*movingBox, boxes)
	var wg sync.WaitGroup
	r.begin = time.Now()
	for i := range boxes {
		ms[i] = &movingBox{r: r, peer: scalePeer(i), node: i % 2}
		start := r.begin.Add(time.Duration(i) * time.Second / time.Duration(boxes))
		wg.Go(func() {
			if err := ms[i].run(ctx, start); err != nil {
				t.Error(err)
			}
		})
	}
	kill := time.NewTimer(d / 2) // the fault, not a synchronization
	<-kill.C
	killAt := time.Now()
	r.killAt.Store(&killAt)
	r.nodes[0].dead.Store(true)
	r.nodes[0].stop()
	wg.Wait()
	offloads.Wait()
	res := r.report(ms, boxes, d, ttl)
	for _, m := range ms {
		if m.moved() && m.back == 0 {
			t.Logf("%s never back: %v", m.peer, m.lastErr)
		}
	}
	res.WALLost = r.lost(t, ms)
	res.Requests = st.n.Load()
	return res
}

// report gathers the boxes' measurements.
func (r *twoNodeRig) report(ms []*movingBox, boxes int, d, ttl time.Duration) vaultbench.TwoNodes {
	res := vaultbench.TwoNodes{Boxes: boxes, Ack: "fsynced", Seconds: d.Seconds(), KillAt: r.killAt.Load().Sub(r.begin).Seconds(), LeaseSeconds: ttl.Seconds()}
	var before, after, back []time.Duration
	for _, m := range ms {
		before, after = append(before, m.before...), append(after, m.after...)
		res.Records += len(m.before) + len(m.after)
		res.Refused += m.refused
		if m.home() != 0 {
			continue
		}
		res.Moved++
		if m.back == 0 {
			res.NotBack++
			continue
		}
		back = append(back, m.back)
	}
	for _, l := range [][]time.Duration{before, after, back} {
		slices.Sort(l)
	}
	res.LagP50Before, res.LagP99Before = quantile(before, 0.5), quantile(before, 0.99)
	res.LagP50After, res.LagP99After = quantile(after, 0.5), quantile(after, 0.99)
	res.TakeoverP50, res.TakeoverMax = quantile(back, 0.5), quantile(back, 1)
	return res
}

// lost offloads the surviving node once more and returns the WAL bytes
// acknowledged to the boxes that the bucket does not hold.
func (r *twoNodeRig) lost(t *testing.T, ms []*movingBox) int64 {
	ctx := context.Background()
	if err := r.nodes[1].v.Offload(ctx); err != nil {
		t.Errorf("the surviving node's last offload: %v", err)
	}
	seg0 := strings.TrimPrefix(filepath.ToSlash(archive.WALFile(16<<20, 1, 0, archive.WALPartial)), "wal/")
	bk := bucket.New(r.nodes[1].v.cfg.Bucket.Store())
	var lost int64
	for i, m := range ms {
		run, err := bk.Batches(ctx, fmt.Sprintf("nS%04d", i), seg0)
		var held int64
		if err == nil && len(run) > 0 {
			held = run[len(run)-1].Raw
		}
		lost += max(0, int64(m.acked*scaleRecord)-held)
	}
	return lost
}
