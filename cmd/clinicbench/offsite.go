package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/clinicbox/clinicbox/appliance/offsite/offsitebench"
)

// A clinic day for the computed rows: 10 office hours of the measured
// clinic workload; the night's WAL (checkpoints of an idle server) is
// left out.
const officeHours = 10

// offsite measures the offsite link. The in-process tailnet (coordination
// server, DERP relay) comes from tailscale's test-only packages, which
// need a testing.TB, so the measurement is a Go test in appliance/offsite
// that this runs and reads back.
func (b *bench) offsite(ctx context.Context) *section {
	secs := int(b.cfg.liveFor.Seconds())
	s := &section{title: "Offsite over the tailnet", ref: "-", measure: "measure",
		about: fmt.Sprintf("`go test -run TestOffsiteBenchmark ./appliance/offsite`: an in-process tailnet (control server, DERP, tsnet nodes on loopback), "+
			"a vault and a box shipping WAL from a PostgreSQL with fsync on, in three phases of %d s. "+
			"(1) pgbench -R 200 -c 2: every 100 ms a probe commits a row, notes pg_current_wal_lsn() and the time, and is resolved by the first vault acknowledgement covering it (commit to fsynced at the vault). "+
			"Wire bytes are the TCP payload both ways over the tailnet (WireGuard's own overhead, about 60 bytes per packet, is not counted). "+
			"(2) pgcluster's ClinicWorkload (a visit: encounter, notes) at 2 visits/s through a box uplink shaped to 128 kbit/s by a token bucket on the connection: measured WAL and wire rates; "+
			"the clinic-day rows are computed from them for %d office hours. "+
			"(3) a backlog written by ClinicWorkload at 100 visits/s while held by a slot, then drained uncapped: measured throughput and wire ratio; "+
			"the 10 Mbit/s row is computed as the larger of the clinic day's wire bytes at 10 Mbit/s and its raw WAL at the measured drain rate.", secs, officeHours)}
	b.logf("offsite: running TestOffsiteBenchmark (%d s per phase)", secs)
	var r offsitebench.Result
	if s.err = b.offsiteTest(ctx, "TestOffsiteBenchmark", "CLINICBOX_OFFSITE_BENCH", &r, "CLINICBOX_OFFSITE_BENCH_SECONDS="+strconv.Itoa(secs)); s.err != nil {
		return s
	}
	s.rows = offsiteRows(r)
	s.notes = append(s.notes, fmt.Sprintf("%d lag probes; the shaped link drained the clinic load %.1f s after it stopped (-1: not within a minute).", r.LagProbes, r.ShapedDrained))
	return s
}

// offsiteTest runs one of appliance/offsite's benchmark tests, which
// writes its result as JSON to the file named by the environment variable
// outVar, and decodes that into v.
func (b *bench) offsiteTest(ctx context.Context, name, outVar string, v any, env ...string) error {
	return b.goTest(ctx, "github.com/clinicbox/clinicbox/appliance/offsite", name, outVar, v, env...)
}

// goTest runs a benchmark test of package pkg, which writes its result as
// JSON to the file named by the environment variable outVar, and decodes
// that into v.
func (b *bench) goTest(ctx context.Context, pkg, name, outVar string, v any, env ...string) error {
	out := filepath.Join(b.tmp, name+".json")
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout=3h", "-run", "^"+name+"$", pkg) // the 2 GB offsite week takes over an hour on a busy machine
	cmd.Env = append(append(os.Environ(), outVar+"="+out), env...)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, tailString(string(o), 2000))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func offsiteRows(r offsitebench.Result) []row {
	nan := math.NaN()
	const link128 = 128000.0 / 8 // bytes/s
	day := officeHours * time.Hour.Seconds()
	dayRaw, dayWire := r.ClinicRawBps*day, r.ClinicWireBps*day
	backlogRatio := float64(r.BacklogWire) / math.Max(1, float64(r.BacklogRaw))
	drainRate := float64(r.BacklogRaw) / math.Max(r.BacklogSecs, 1e-9)
	at10 := math.Max(dayRaw*backlogRatio/(10e6/8), dayRaw/drainRate)
	return []row{
		values("commit-to-durable lag p50 (s), pgbench 200 tps", "%.3f", r.LagP50, nan),
		atMost("commit-to-durable lag p99 (s), pgbench 200 tps", "%.3f", r.LagP99, nan, 1, "s"),
		values("sealed bytes per raw WAL byte", "%.3f", float64(r.SealedBytes)/math.Max(1, float64(r.RawBytes)), nan),
		values("tailnet TCP bytes per raw WAL byte", "%.3f", float64(r.WireBytes)/math.Max(1, float64(r.RawBytes)), nan),
		values(fmt.Sprintf("clinic WAL, %.0f visits/s (MB per %d h day)", r.ClinicRate, officeHours), "%.1f", dayRaw/1e6, nan),
		atMost("clinic day's wire bytes / one day of a 128 kbit/s link", "%.3f", dayWire/(link128*24*3600), nan, 1, "(drains within the day)"),
		values("lag p99 at 128 kbit/s under the clinic load (s)", "%.2f", r.ShapedLagP99, nan),
		values("backlog drain, uncapped loopback (raw MB/s)", "%.1f", drainRate/1e6, nan),
		values("24 h backlog at 10 Mbit/s (minutes, computed)", "%.1f", at10/60, nan),
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
