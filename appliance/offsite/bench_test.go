package offsite_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"golang.org/x/time/rate"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/offsite/offsitebench"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// countingConn counts TCP payload bytes both ways; shaped conns also pace
// writes (the box's uplink) with a token bucket.
type countingConn struct {
	net.Conn
	n   *atomic.Int64
	lim *rate.Limiter
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	if c.lim != nil {
		for off := 0; off < len(p); {
			n := min(len(p)-off, c.lim.Burst())
			if err := c.lim.WaitN(context.Background(), n); err != nil {
				return off, err
			}
			w, err := c.Conn.Write(p[off : off+n])
			c.n.Add(int64(w))
			off += w
			if err != nil {
				return off, err
			}
		}
		return len(p), nil
	}
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func clientOver(node *tailnet.Node, n *atomic.Int64, bytesPerSec int) *http.Client {
	var lim *rate.Limiter
	if bytesPerSec > 0 {
		lim = rate.NewLimiter(rate.Limit(bytesPerSec), 1500) // about one packet
	}
	return clientShaped(node, n, lim)
}

// clientShaped is clientOver with the uplink's token bucket given (nil:
// not shaped).
func clientShaped(node *tailnet.Node, n *atomic.Int64, lim *rate.Limiter) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := node.Dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, n: n, lim: lim}, nil
	}}}
}

// probes measures commit-to-durable: each probe commits a row, notes the
// server's WAL position right after the commit returned and the time, and
// is resolved by the first acknowledgement from the vault that covers it.
type probes struct {
	mu      sync.Mutex
	pending []probe
	lags    []float64
	ats     []time.Time // when each of lags committed
}

type probe struct {
	lsn postgres.LSN
	at  time.Time
}

func (p *probes) durable(_ uint32, lsn postgres.LSN) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for ; i < len(p.pending) && p.pending[i].lsn <= lsn; i++ {
		p.lags = append(p.lags, now.Sub(p.pending[i].at).Seconds())
		p.ats = append(p.ats, p.pending[i].at)
	}
	p.pending = p.pending[i:]
}

func (p *probes) run(ctx context.Context, t *testing.T, c *pgtest.Cluster) {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(context.Background())
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var s string
		if _, err := conn.Exec(ctx, "INSERT INTO probes VALUES (clock_timestamp())"); err != nil {
			return
		}
		at := time.Now()
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
			return
		}
		lsn, _ := pglogrepl.ParseLSN(s)
		p.mu.Lock()
		p.pending = append(p.pending, probe{lsn, at})
		p.mu.Unlock()
	}
}

// reset forgets every probe.
func (p *probes) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending, p.lags, p.ats = nil, nil, nil
}

// taken returns the lags so far, a probe not yet acknowledged counting
// with its age (a lower bound of its lag).
func (p *probes) taken() []float64 {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.lags)
	for _, q := range p.pending {
		out = append(out, now.Sub(q.at).Seconds())
	}
	return out
}

func (p *probes) quantile(q float64) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lags) == 0 {
		return -1
	}
	s := slices.Clone(p.lags)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// benchSettings returns the JSON file the benchmark writes and each
// phase's length in seconds (CLINICBOX_OFFSITE_BENCH_SECONDS, default 30).
// Without CLINICBOX_OFFSITE_BENCH the benchmark skips, unless every test
// must run (CLINICBOX_REQUIRE_ALL=1): then it runs two-second phases into
// a temporary file, so that the harness cannot rot unseen.
func benchSettings(t *testing.T) (string, int) {
	out := os.Getenv("CLINICBOX_OFFSITE_BENCH")
	secs, _ := strconv.Atoi(os.Getenv("CLINICBOX_OFFSITE_BENCH_SECONDS"))
	if out == "" {
		if !testenv.RequireAll() {
			testenv.Skip(t, "a benchmark: set CLINICBOX_OFFSITE_BENCH=FILE (cmd/clinicbench does)")
		}
		out = filepath.Join(t.TempDir(), "offsite-bench.json")
		if secs <= 0 {
			secs = 2
		}
	}
	if secs <= 0 {
		secs = 30
	}
	return out, secs
}

// TestOffsiteBenchmark measures the offsite link for cmd/clinicbench (see
// benchSettings).
func TestOffsiteBenchmark(t *testing.T) {
	out, secs := benchSettings(t)
	phase := time.Duration(secs) * time.Second
	res := offsitebench.Result{Seconds: phase.Seconds(), SteadyTPS: 200, ClinicRate: 2}
	ctx := context.Background()
	c := pgtest.New(t, pgtest.Options{Fsync: true})
	if err := c.PgbenchInit(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := c.ClinicInit(ctx, 2000); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLE probes (at timestamptz)", "CHECKPOINT")
	tn := tailnettest.New(t)
	vnode := tn.Node(t, "vault", "tag:vault")
	startVault(t, vnode, vault.Config{Dir: t.TempDir()})
	id, recips := newKey(t)
	_ = id

	// ship runs a shipper from its own box node (its own namespace) until
	// the returned stop is called.
	ship := func(name string, bytesPerSec int, pr *probes) (*offsite.Shipper, *atomic.Int64, func()) {
		node := tn.Node(t, "box-"+name, "tag:clinicbox")
		wire := new(atomic.Int64)
		sh, err := offsite.New(offsite.Config{Name: name, DB: c.URL(), Recipients: recips, Signer: testSigner, VaultURL: "http://vault:8443",
			Client: clientOver(node, wire, bytesPerSec), OnDurable: pr.durable}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { sh.Run(rctx); close(done) }()
		return sh, wire, func() { cancel(); <-done }
	}
	lsnNow := func() postgres.LSN {
		l, err := c.CurrentLSN(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// freshSlot makes the named shipper's slot at a new segment right after
	// a checkpoint, so that its stream starts there and not at an older
	// redo point, and returns where the slot starts.
	freshSlot := func(name string) postgres.LSN {
		if _, err := c.CurrentLSN(ctx, true); err != nil {
			t.Fatal(err)
		}
		c.MustExec(t, "CHECKPOINT")
		conn, err := postgres.Connect(ctx, c.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.CreateSlot(ctx, "clinicbox_offsite_"+name, false); err != nil {
			t.Fatal(err)
		}
		sql, err := c.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer sql.Close(context.Background())
		var from string
		if err := sql.QueryRow(ctx, "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1", "clinicbox_offsite_"+name).Scan(&from); err != nil {
			t.Fatal(err)
		}
		lsn, err := pglogrepl.ParseLSN(from)
		if err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	// waitDrained waits until the shipper's durable position reaches lsn.
	waitDrained := func(sh *offsite.Shipper, lsn postgres.LSN, limit time.Duration) time.Duration {
		start := time.Now()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for sh.Status().Durable < lsn {
			if time.Since(start) > limit {
				return -1
			}
			<-tick.C
		}
		return time.Since(start)
	}

	t.Run("steady pgbench over the loopback tailnet", func(t *testing.T) {
		pr := &probes{}
		sh, wire, stop := ship("steady", 0, pr)
		defer stop()
		waitDrained(sh, lsnNow(), time.Minute)
		st0, w0 := sh.Status(), wire.Load()
		lctx, cancel := context.WithTimeout(ctx, phase)
		defer cancel()
		go pr.run(lctx, t, c)
		if err := c.Pgbench(lctx, "-c", "2", "-R", strconv.Itoa(res.SteadyTPS), "-T", strconv.Itoa(secs)); err != nil {
			t.Fatal(err)
		}
		waitDrained(sh, lsnNow(), time.Minute)
		st := sh.Status()
		res.LagP50, res.LagP99, res.LagProbes = pr.quantile(0.5), pr.quantile(0.99), len(pr.lags)
		res.RawBytes, res.SealedBytes, res.WireBytes = st.RawBytes-st0.RawBytes, st.WireBytes-st0.WireBytes, wire.Load()-w0
	})

	t.Run("a clinic day over a 128 kbit/s link", func(t *testing.T) {
		// Older WAL is not the clinic day's.
		freshSlot("shaped")
		pr := &probes{}
		sh, wire, stop := ship("shaped", 128000/8, pr)
		defer stop()
		if waitDrained(sh, lsnNow(), 5*time.Minute) < 0 {
			t.Fatal("the shaped shipper did not catch up with the database's existing WAL")
		}
		from, w0, start := lsnNow(), wire.Load(), time.Now()
		lctx, cancel := context.WithTimeout(ctx, phase)
		defer cancel()
		go pr.run(lctx, t, c)
		if err := c.ClinicWorkload(lctx, res.ClinicRate, 2000); err != nil {
			t.Fatal(err)
		}
		end := lsnNow()
		res.ShapedDrained = waitDrained(sh, end, time.Minute).Seconds()
		took := time.Since(start).Seconds()
		res.ClinicRawBps = float64(end-from) / phase.Seconds()
		res.ClinicWireBps = float64(wire.Load()-w0) / took
		res.ShapedLagP99 = pr.quantile(0.99)
	})

	t.Run("a backlog drains", func(t *testing.T) {
		from := freshSlot("backlog")
		lctx, cancel := context.WithTimeout(ctx, phase/2)
		defer cancel()
		if err := c.ClinicWorkload(lctx, 100, 2000); err != nil {
			t.Fatal(err)
		}
		end := lsnNow()
		pr := &probes{}
		start := time.Now()
		sh, wire, stop := ship("backlog", 0, pr)
		defer stop()
		if waitDrained(sh, end, 5*time.Minute) < 0 {
			t.Fatal("the backlog did not drain within 5 minutes")
		}
		res.BacklogSecs = time.Since(start).Seconds()
		res.BacklogRaw, res.BacklogWire = int64(end-from), wire.Load()
	})

	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", b)
}

func newKey(t *testing.T) (string, []string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id.String(), []string{id.Recipient().String()}
}
