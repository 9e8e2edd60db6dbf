package offsite_test

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// _MB (the clinic dataset, default 300), _DAYS (default 7) and _VISITS
// (visits per office day, default 200).
type weekSettings struct {
	out                string
	mb, days, visits   int
	maintenanceOnDay   int
	linkBytesPerSecond int
}

func weekFromEnv(t *testing.T) weekSettings {
	w := weekSettings{out: os.Getenv("CLINICBOX_OFFSITE_WEEK"), mb: 300, days: 7, visits: 200, maintenanceOnDay: 3, linkBytesPerSecond: 128000 / 8}
	if w.out == "" {
		if !testenv.RequireAll() {
			testenv.Skip(t, "a benchmark: set CLINICBOX_OFFSITE_WEEK=FILE (cmd/clinicbench does)")
		}
		w.out, w.mb, w.days, w.visits, w.maintenanceOnDay = filepath.Join(t.TempDir(), "week.json"), 5, 3, 20, 2
	}
	for _, k := range []struct {
		env string
		v   *int
	}{{"CLINICBOX_OFFSITE_WEEK_MB", &w.mb}, {"CLINICBOX_OFFSITE_WEEK_DAYS", &w.days}, {"CLINICBOX_OFFSITE_WEEK_VISITS", &w.visits}} {
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
// to 128 kbit/s by a token bucket on the tailnet connection, while a probe
// commits every 100 ms and waits for the vault's acknowledgement (WAL lag
// while a base upload runs), the box's cap for base uploads set to three
// quarters of the link. Time is compressed: a day is its visits, as
// fast as the server takes them, and then its upload.
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
	res := offsitebench.Week{DatasetMB: w.mb, VisitsPerDay: w.visits, LinkBps: w.linkBytesPerSecond}
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
	// goes uncapped, then the box restarts with the practice's cap set
	// below the uplink, leaving room for WAL.
	box := startWeekBox(t, weekBoxConfig{ControlURL: tn.ControlURL, Dir: t.TempDir(), DB: c.URL(), Recipients: recips, Identity: idText, Spool: spool}, pr.durable)
	box.do(weekBoxCmd{Op: "start"})
	res.CapBitsPerSecond = int64(w.linkBytesPerSecond) * 8 * 3 / 4

	drives := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	rng := rand.New(rand.NewPCG(1, 2))
	var allLags, shapedLags []float64
	for day := range w.days {
		if err := pgcluster.ClinicDataVisits(ctx, sql, rng, data, w.visits); err != nil {
			t.Fatal(err)
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
		if shaped && day == 1 {
			box.do(weekBoxCmd{Op: "start", LinkBps: w.linkBytesPerSecond, CapBits: res.CapBitsPerSecond})
		}
		d := offsitebench.Day{Day: day, Maintenance: maint, Shaped: shaped}
		// Time is compressed: the day's WAL (its visits, the checkpoint and
		// the backup) reaches the box at once rather than over office
		// hours. It drains first, timed on its own, so that the lag below
		// is that of commits while the base backup uploads.
		d.DrainSecs = drain(t, box.Durable, c)
		pr.reset()
		d.Wire, d.UploadSecs, d.PeakSpool = uploadMeasured(t, box, drive, b.ID, spool, func(ctx context.Context) { pr.run(ctx, t, c) })
		dayLags := &probes{lags: pr.taken()}
		d.LagP50, d.LagP99 = dayLags.quantile(0.5), dayLags.quantile(0.99)
		allLags = append(allLags, dayLags.lags...)
		if shaped {
			shapedLags = append(shapedLags, dayLags.lags...)
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
	lags := &probes{lags: allLags}
	res.LagProbes, res.LagP50, res.LagP99 = len(allLags), lags.quantile(0.5), lags.quantile(0.99)
	res.ShapedLagP99 = (&probes{lags: shapedLags}).quantile(0.99)
	res.PeakRSSMiB = peakRSSMiB()
	st := box.do(weekBoxCmd{Op: "stats"})
	res.BoxPeakRSSMiB, res.BoxCPUSeconds = st.RSSMiB, st.CPUSecs
	res.Seconds = time.Since(start).Seconds()
	out, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(w.out, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", out)
}

// uploadMeasured uploads backup id while load runs, and returns the wire
// bytes and seconds it took and the most the spool held meanwhile.
func uploadMeasured(t *testing.T, box *weekBox, drive, id, spool string, load func(context.Context)) (int64, float64, int64) {
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
	m := box.do(weekBoxCmd{Op: "upload", Drive: drive, BackupID: id})
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
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}
