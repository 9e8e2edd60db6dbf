package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/appliance/vault/vaultbench"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// Many lightweight boxes ship WAL to one vault node that takes leases in
// a bucket on a real versitygw and offloads every 10 s, as clinicvault
// does: each box sends one 8 KiB record a second (a busy practice's
// steady WAL), sealed beforehand so that the senders cost next to
// nothing. The acknowledgement lag is measured from request to answer in
// process (the tailnet's own delay comes on top), for both meanings of
// the acknowledgement.
const (
	scaleRecord  = 8 << 10
	scaleOffload = 10 * time.Second
)

// TestVaultScaleBenchmark writes a vaultbench.Result to the file named by
// CLINICBOX_VAULT_BENCH, with phases of CLINICBOX_VAULT_BENCH_SECONDS
// (default 30) for each number of boxes in CLINICBOX_VAULT_BENCH_BOXES
// (default 50,100,200,400). It is a benchmark: without the file it skips,
// unless every test must run (CLINICBOX_REQUIRE_ALL=1): then it runs
// two-second phases of 5 boxes, so that the harness cannot rot unseen.
func TestVaultScaleBenchmark(t *testing.T) {
	out := os.Getenv("CLINICBOX_VAULT_BENCH")
	secs, _ := strconv.Atoi(os.Getenv("CLINICBOX_VAULT_BENCH_SECONDS"))
	counts := os.Getenv("CLINICBOX_VAULT_BENCH_BOXES")
	if out == "" {
		if !testenv.RequireAll() {
			testenv.Skip(t, "a benchmark: set CLINICBOX_VAULT_BENCH=FILE (cmd/clinicbench does)")
		}
		out, secs, counts = filepath.Join(t.TempDir(), "vault-bench.json"), 2, "5"
	}
	if secs <= 0 {
		secs = 30
	}
	if counts == "" {
		counts = "50,100,200,400"
	}
	res := vaultbench.Result{Seconds: float64(secs), RecordBytes: scaleRecord, RecordsPerSec: 1, OffloadSeconds: scaleOffload.Seconds()}
	for _, c := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			t.Fatalf("CLINICBOX_VAULT_BENCH_BOXES: %q is not a number of boxes", c)
		}
		for _, ack := range []string{"fsynced", "stored"} {
			p := scalePhase(t, n, ack, time.Duration(secs)*time.Second)
			t.Logf("%d boxes, ack %s: %d records (%d refused, sent again), lag p50 %.3f s p99 %.3f s, cpu %.1f s, rss %.0f MiB, %d S3 requests",
				n, ack, p.Records, p.Refused, p.LagP50, p.LagP99, p.CPUSeconds, p.RSSMiB, p.Requests)
			res.Phases = append(res.Phases, p)
		}
		res.TwoNodes = append(res.TwoNodes, runTwoNodes(t, n, time.Duration(secs)*time.Second))
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runTwoNodes runs the two-node phase for n boxes: leases of 10 s (the
// shortest clinicvault allows), at least 40 s so that the boxes of the
// killed node are back well before the end; 2 s leases for phases
// shorter than 30 s (the harness's own check).
func runTwoNodes(t *testing.T, n int, d time.Duration) vaultbench.TwoNodes {
	ttl := 10 * time.Second
	if d < 30*time.Second {
		ttl = 2 * time.Second
	}
	p := twoNodePhase(t, n, max(d, 4*ttl), ttl)
	t.Logf("%d boxes on two nodes, one killed at %.0f s: ack lag p50/p99 %.3f/%.3f s before, %.3f/%.3f s after; takeover p50 %.1f s, max %.1f s, %d of %d moved boxes not back; %d records (%d refused); WAL lost %d bytes; %d S3 requests",
		n, p.KillAt, p.LagP50Before, p.LagP99Before, p.LagP50After, p.LagP99After, p.TakeoverP50, p.TakeoverMax, p.NotBack, p.Moved, p.Records, p.Refused, p.WALLost, p.Requests)
	if p.WALLost != 0 || p.NotBack != 0 {
		t.Errorf("%d boxes on two nodes: %d bytes of acknowledged WAL lost, %d moved boxes not back; want none", n, p.WALLost, p.NotBack)
	}
	return p
}

// scaleRig is one phase's vault and the records every box sends.
type scaleRig struct {
	v       *Vault
	records [][]byte // sealed, at offsets 0, scaleRecord, ...
	info    []byte   // the repository info, as JSON
}

func newScaleRig(t *testing.T, boxes int, ack string, records int, st store.Store) *scaleRig {
	r := &scaleRig{v: newScaleVault(t, scalePeers(boxes), Config{Node: "bench", AckStored: ack == "stored"}, st)}
	r.info, r.records = sealScaleRecords(t, records)
	return r
}

// scalePeers are the boxes of a phase, as the tailnet would name them.
func scalePeers(boxes int) peers {
	ps := peers{}
	for i := range boxes {
		ps[scalePeer(i)] = tailnet.Peer{StableID: fmt.Sprintf("nS%04d", i), Node: "box", Tags: []string{"tag:clinicbox"}}
	}
	return ps
}

// newScaleVault starts a vault node on its own directory with cfg, into
// the bucket on st.
func newScaleVault(t *testing.T, ps peers, cfg Config, st store.Store) *Vault {
	cfg.Dir, cfg.Bucket = t.TempDir(), bucket.New(st)
	v, err := New(cfg, ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sealScaleRecords returns a repository's info, as JSON, and n records
// of it sealed at offsets 0, scaleRecord, ...
func sealScaleRecords(t *testing.T, n int) ([]byte, [][]byte) {
	id, _ := age.GenerateX25519Identity()
	info := archive.Info{Format: archive.FormatVersion, SystemID: "7300000000000000001", SegmentSize: 16 << 20, ServerVersion: 150000,
		Recipients: []string{id.Recipient().String()}, Signer: testSigner.Public().String()}
	sealer, err := archive.NewWALSealer(info, testSigner)
	if err != nil {
		t.Fatal(err)
	}
	var records [][]byte
	for i := range n {
		rec, err := sealer.Record(1, 0, i*scaleRecord, walBytes(scaleRecord, byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, rec)
	}
	raw, _ := json.Marshal(info)
	return raw, records
}

func scalePeer(i int) string { return fmt.Sprintf("box%d:1", i) }

func (r *scaleRig) call(peer, method, target string, body []byte) error {
	return callVault(r.v, peer, method, target, body, nil)
}

// callVault sends one request to v as peer and decodes a 200 answer into
// out; any other answer is an error.
func callVault(v *Vault, peer, method, target string, body []byte, out any) error {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.RemoteAddr = peer
	w := httptest.NewRecorder()
	v.ServeHTTP(w, req)
	if w.Code != 200 {
		return fmt.Errorf("%s %s: %d %s", method, target, w.Code, w.Body)
	}
	if out != nil {
		return json.Unmarshal(w.Body.Bytes(), out)
	}
	return nil
}

// box sends one record a second from start and returns each
// acknowledged one's lag and the number refused; a refused record is sent
// again at the next second, as a box's stream retries.
func (r *scaleRig) box(ctx context.Context, peer string, start time.Time) ([]time.Duration, int, error) {
	if err := r.call(peer, "PUT", "/v1/repo", r.info); err != nil {
		return nil, 0, err
	}
	if err := r.call(peer, "POST", "/v1/wal/begin?tli=1&lsn=0", nil); err != nil {
		return nil, 0, err
	}
	var lags []time.Duration
	refused, next := 0, 0
	for tick := range r.records {
		select {
		case <-ctx.Done():
			return lags, refused, nil
		case <-time.After(time.Until(start.Add(time.Duration(tick) * time.Second))):
		}
		t0 := time.Now()
		err := r.call(peer, "POST", fmt.Sprintf("/v1/wal/record?tli=1&seg=0&offset=%d&length=%d", next*scaleRecord, scaleRecord), r.records[next])
		if err != nil {
			refused++
			continue
		}
		lags = append(lags, time.Since(t0))
		next++
	}
	return lags, refused, nil
}

func scalePhase(t *testing.T, boxes int, ack string, d time.Duration) vaultbench.Phase {
	srv := storetest.StartVersityGW(t, storetest.Options{})
	defer srv.Kill()
	st := &requests{Store: srv.Open(t)}
	r := newScaleRig(t, boxes, ack, int(d/time.Second)+1, st)
	defer r.v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	go offloadEvery(ctx, r.v, scaleOffload)
	cpu0 := cpuTime()
	var mu sync.Mutex
	var lags []time.Duration
	var refused int
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range boxes {
		// Spread over the first second, as boxes are.
		start := begin.Add(time.Duration(i) * time.Second / time.Duration(boxes))
		wg.Go(func() {
			l, n, err := r.box(ctx, scalePeer(i), start)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			lags = append(lags, l...)
			refused += n
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lags)
	return vaultbench.Phase{Boxes: boxes, Ack: ack, Records: len(lags), Refused: refused, LagP50: quantile(lags, 0.5), LagP99: quantile(lags, 0.99),
		CPUSeconds: (cpuTime() - cpu0).Seconds(), RSSMiB: rssMiB(), Requests: st.n.Load()}
}

// offloadEvery offloads as clinicvault does, until ctx ends.
func offloadEvery(ctx context.Context, v *Vault, every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			v.Offload(ctx)
		}
	}
}

func quantile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))].Seconds()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssMiB reads the process's resident set from /proc/self/status.
func rssMiB() float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}
