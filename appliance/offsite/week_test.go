package offsite_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/offsite/offsitebench"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// weekSettings are the week benchmark's knobs, from the environment:
// CLINICBOX_OFFSITE_WEEK (the JSON file to write; without it the
// benchmark skips unless every test must run, and then runs a tiny week),
// _MB (the clinic dataset, default 300), _DAYS (default 7), _VISITS
// (visits per office day, default 200) and _DAYLINK_KB (how much of each
// upload after the seeding goes over the day link, default 512).
type weekSettings struct {
	out                string
	mb, days, visits   int
	maintenanceOnDay   int
	linkBytesPerSecond int // by day
	nightBytesPerSec   int
	dayLinkKB          int
}

func weekFromEnv(t *testing.T) weekSettings {
	w := weekSettings{out: os.Getenv("CLINICBOX_OFFSITE_WEEK"), mb: 300, days: 7, visits: 200, maintenanceOnDay: 3,
		linkBytesPerSecond: 128000 / 8, nightBytesPerSec: 10_000_000 / 8, dayLinkKB: 512}
	if w.out == "" {
		if !testenv.RequireAll() {
			testenv.Skip(t, "a benchmark: set CLINICBOX_OFFSITE_WEEK=FILE (cmd/clinicbench does)")
		}
		w.out, w.mb, w.days, w.visits, w.maintenanceOnDay, w.dayLinkKB = filepath.Join(t.TempDir(), "week.json"), 5, 3, 20, 2, 32
	}
	for _, k := range []struct {
		env string
		v   *int
	}{{"CLINICBOX_OFFSITE_WEEK_MB", &w.mb}, {"CLINICBOX_OFFSITE_WEEK_DAYS", &w.days}, {"CLINICBOX_OFFSITE_WEEK_VISITS", &w.visits},
		{"CLINICBOX_OFFSITE_WEEK_DAYLINK_KB", &w.dayLinkKB}} {
		if n, err := strconv.Atoi(os.Getenv(k.env)); err == nil && n > 0 {
			*k.v = n
		}
	}
	return w
}

// TestOffsiteWeekBenchmark ships a simulated clinic week to the vault for
// cmd/clinicbench: the clinic dataset, a day of visits before each nightly
// base backup (the maintenance night vacuums, reindexes and recreates the
// report table), each backup taken onto the drive of the day (two drives,
// swapped daily) and sent through the box's spool: day 0 whole over an
// unshaped link (the seeding), then incrementals over a box uplink shaped
// by a token bucket on the tailnet connection, 128 kbit/s in office hours
// and 10 Mbit/s at night, the box's cap for base uploads three quarters
// of the link of the hour on its clock. Each upload starts in office
// hours: its first DayLinkBytes go over the day link, then the box's
// clock turns to the night for the rest. A probe commits every 100 ms
// and waits for the vault's acknowledgement (WAL lag while a base upload
// runs, on either link). Time is compressed: a day is its visits, as fast
// as the server takes them, and then its upload. After the last day the
// box's repository is restored from the vault to a time recorded halfway
// through that day's visits, and every row must match the source as it
// was then.
func TestOffsiteWeekBenchmark(t *testing.T) {
	w := weekFromEnv(t)
	start := time.Now()
	ctx := context.Background()
	c := pgtest.New(t, pgtest.Options{Fsync: true})
	data := pgcluster.ClinicData{MB: w.mb}
	if err := c.ClinicDataInit(ctx, data); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLE probes (at timestamptz)", "VACUUM ANALYZE", "CHECKPOINT")
	res := offsitebench.Week{DatasetMB: w.mb, VisitsPerDay: w.visits, LinkBps: w.linkBytesPerSecond, NightLinkBps: w.nightBytesPerSec, DayLinkBytes: int64(w.dayLinkKB) << 10}
	sql, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer sql.Close(context.Background())
	var dbBytes int64
	if err := sql.QueryRow(ctx, "SELECT pg_database_size('postgres')").Scan(&dbBytes); err != nil {
		t.Fatal(err)
	}
	res.DatabaseMB = float64(dbBytes) / 1e6

	tn := tailnettest.New(t)
	vaultDir := t.TempDir()
	startVault(t, tn.Node(t, "vault", "tag:vault"), vault.Config{Dir: vaultDir})
	idText, recips := newKey(t)
	pr := &probes{}
	spool := filepath.Join(t.TempDir(), "perm", "offsite-spool")
	// The box runs in a process of its own (weekbox_test.go): the seeding
	// goes uncapped, then the box restarts with the practice's caps set
	// below the uplink, leaving room for WAL.
	box := startWeekBox(t, weekBoxConfig{ControlURL: tn.ControlURL, Dir: t.TempDir(), DB: c.URL(), Recipients: recips, Identity: idText, Spool: spool}, pr.durable)
	box.do(weekBoxCmd{Op: "start"})
	res.CapBitsPerSecond = int64(w.linkBytesPerSecond) * 8 * 3 / 4
	res.NightCapBitsPerSecond = int64(w.nightBytesPerSec) * 8 * 3 / 4

	drives := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	rng := rand.New(rand.NewPCG(1, 2))
	var allLags, shapedLags, nightLags []float64
	var target weekTarget
	for day := range w.days {
		// The last day's visits are cut in two by the restore's target.
		first := w.visits
		if day == w.days-1 {
			first = w.visits / 2
		}
		if err := pgcluster.ClinicDataVisits(ctx, sql, rng, data, first); err != nil {
			t.Fatal(err)
		}
		if day == w.days-1 {
			target = markTarget(t, sql)
			if err := pgcluster.ClinicDataVisits(ctx, sql, rng, data, w.visits-first); err != nil {
				t.Fatal(err)
			}
		}
		maint := day == w.maintenanceOnDay
		if maint {
			if err := pgcluster.ClinicDataMaintenance(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		c.MustExec(t, "CHECKPOINT")
		drive := drives[day%2]
		b, err := backup.Take(ctx, backup.Options{DB: c.URL(), Repo: drive, Recipients: recips, Signer: testSigner, Compression: archive.ServerZstd})
		if err != nil {
			t.Fatal(err)
		}
		shaped := day > 0
		up := weekBoxCmd{Op: "upload", Drive: drive, BackupID: b.ID}
		if shaped {
			up.DayBytes = res.DayLinkBytes
		}
		restart := weekBoxCmd{Op: "start", LinkBps: w.linkBytesPerSecond, CapBits: res.CapBitsPerSecond, NightLinkBps: w.nightBytesPerSec, NightCapBits: res.NightCapBitsPerSecond}
		if shaped && day == 1 {
			box.do(restart)
		}
		d := offsitebench.Day{Day: day, Maintenance: maint, Shaped: shaped}
		// Time is compressed: the day's WAL (its visits, the checkpoint and
		// the backup) reaches the box at once rather than over office
		// hours. It drains first (on the night link after the seeding),
		// timed on its own, so that the lag below is that of commits while
		// the base backup uploads.
		d.DrainSecs = drain(t, box.Durable, c)
		pr.reset()
		box.nightAt.Store(0)
		d.Wire, d.UploadSecs, d.PeakSpool = uploadMeasured(t, box, up, spool, func(ctx context.Context) { pr.run(ctx, t, c) })
		night := time.Now()
		if n := box.nightAt.Load(); n != 0 {
			night = time.Unix(0, n)
			d.NightSecs = time.Since(night).Seconds()
		}
		dayLags, nightL := pr.split(night)
		d.LagP50, d.LagP99 = quantile(dayLags, 0.5), quantile(dayLags, 0.99)
		d.NightLagP99 = quantile(nightL, 0.99)
		allLags = append(append(allLags, dayLags...), nightL...)
		if shaped {
			shapedLags, nightLags = append(shapedLags, dayLags...), append(nightLags, nightL...)
		}
		stored := vaultBackup(t, vaultDir, b.ID)
		d.Kind, d.Stored = string(stored.Kind), stored.StoredBytes()
		if d.Kind == "" {
			d.Kind = string(archive.KindFull)
		}
		d.SpoolBytes = testenv.DirBytes(spool)
		if fi, err := os.Stat(filepath.Join(spool, "blockmap")); err == nil {
			d.BlockMap = fi.Size()
		}
		t.Logf("day %d: %+v", day, d)
		res.Days = append(res.Days, d)
	}
	res.LagProbes, res.LagP50, res.LagP99 = len(allLags), quantile(allLags, 0.5), quantile(allLags, 0.99)
	res.ShapedLagP99, res.NightLagP99 = quantile(shapedLags, 0.99), quantile(nightLags, 0.99)
	res.PeakRSSMiB = peakRSSMiB()
	st := box.do(weekBoxCmd{Op: "stats"})
	res.BoxPeakRSSMiB, res.BoxCPUSeconds = st.RSSMiB, st.CPUSecs
	res.Restore = restoreWeek(t, tn.Node(t, "restorer", "tag:clinicrestore").HTTPClient(), vaultDir, idText, target)
	res.Seconds = time.Since(start).Seconds()
	out, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(w.out, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", out)
	if !res.Restore.Match {
		t.Errorf("restored from the vault to %s: digest %s; the source had %s", res.Restore.Target, res.Restore.RestoredDigest, res.Restore.SourceDigest)
	}
}

// quantile is the q-quantile of lags, -1 without any.
func quantile(lags []float64, q float64) float64 {
	return (&probes{lags: lags}).quantile(q)
}

// split is taken, parted by when each probe committed: before at, and at
// or after it.
func (p *probes) split(at time.Time) (before, after []float64) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	add := func(lag float64, committed time.Time) {
		if committed.Before(at) {
			before = append(before, lag)
		} else {
			after = append(after, lag)
		}
	}
	for i, l := range p.lags {
		add(l, p.ats[i])
	}
	for _, q := range p.pending {
		add(now.Sub(q.at).Seconds(), q.at)
	}
	return before, after
}

// uploadMeasured uploads a backup (up) while load runs, and returns the wire
// bytes and seconds it took and the most the spool held meanwhile.
func uploadMeasured(t *testing.T, box *weekBox, up weekBoxCmd, spool string, load func(context.Context)) (int64, float64, int64) {
	t.Helper()
	lctx, cancel := context.WithCancel(context.Background())
	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			peak.Store(max(peak.Load(), testenv.DirBytes(spool)))
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	go load(lctx)
	t0 := time.Now()
	m := box.do(up)
	took := time.Since(t0).Seconds()
	cancel()
	<-sampled
	return m.Wire, took, peak.Load()
}

// drain waits until the vault holds the server's WAL as of now, and
// returns how long that took.
func drain(t *testing.T, durable func() postgres.LSN, c *pgtest.Cluster) float64 {
	t.Helper()
	end, err := c.CurrentLSN(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for deadline := time.Now().Add(testenv.Patience(t)); durable() < end; {
		if time.Now().After(deadline) {
			t.Fatalf("the vault's WAL stayed at %s, short of the server's %s", durable(), end)
		}
		time.Sleep(100 * time.Millisecond) // polling the status for a positive signal
	}
	return time.Since(start).Seconds()
}

// vaultBackup is backup id as the vault stores it.
func vaultBackup(t *testing.T, vaultDir, id string) *archive.Backup {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(vaultDir, "boxes", "*", "repo"))
	if len(dirs) != 1 {
		t.Fatalf("vault repositories: %v", dirs)
	}
	r, err := archive.Open(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Backup(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// peakRSSMiB is the test process's peak resident set (VmHWM): the box's
// shipper, but also the vault, two tailnet nodes and the test itself, so
// an upper bound on the box's.
func peakRSSMiB() float64 {
	if kb := testenv.StatusKB("VmHWM"); kb > 0 {
		return float64(kb) / 1024
	}
	return -1
}
