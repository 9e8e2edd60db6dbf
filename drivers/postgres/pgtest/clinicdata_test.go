package pgtest_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// The clinic dataset grows to about the size asked for, its notes compress
// like prose (not like pgbench's blank padding), and the day's workload
// runs: visits, vacuum, reindex, the report table dropped and recreated.
func TestClinicDataSizeAndCompression(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := pgcluster.ClinicData{MB: 12}
	if err := c.ClinicDataInit(ctx, d); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var size int64
	if err := conn.QueryRow(ctx, pgcluster.ClinicDataSize).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if mb := float64(size) / 1e6; mb < 0.7*float64(d.MB) || mb > 1.5*float64(d.MB) {
		t.Errorf("dataset of %.1f MB; want about %d", mb, d.MB)
	}
	var notes string
	var count, median int
	err = conn.QueryRow(ctx, `SELECT string_agg(body, E'\n'), count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY length(body))
		FROM clinic.note`).Scan(&notes, &count, &median)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	ratio := float64(len(notes)) / float64(len(enc.EncodeAll([]byte(notes), nil)))
	if ratio < 2.5 || ratio > 5 {
		t.Errorf("notes compress %.1fx with zstd; want 2.5x to 5x, like real notes", ratio)
	}
	if median < 400 || median > 3000 {
		t.Errorf("median note of %d characters; want a few hundred to a few thousand", median)
	}
	t.Logf("%.1f MB, %d notes, median %d characters, notes compress %.2fx; sample: %.300s", float64(size)/1e6, count, median, ratio, notes)

	rng := rand.New(rand.NewPCG(1, 2))
	if err := pgcluster.ClinicDataVisits(ctx, conn, rng, d, 25); err != nil {
		t.Fatal(err)
	}
	if err := pgcluster.ClinicDataMaintenance(ctx, conn); err != nil {
		t.Fatal(err)
	}
	var after, addenda int
	err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM clinic.note), (SELECT count(*) FROM clinic.note WHERE body LIKE '%Addendum%')`).Scan(&after, &addenda)
	if err != nil || after != count+25 || addenda == 0 {
		t.Errorf("after 25 visits: %d notes, %d amended, %v; want %d, some", after, addenda, err, count+25)
	}
	var reportRows int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM clinic.report_daily`).Scan(&reportRows); err != nil || reportRows == 0 {
		t.Errorf("report table: %d rows, %v; want it recreated with rows", reportRows, err)
	}
	if strings.Count(notes, "Vitals:") != count {
		t.Errorf("notes without their vitals line")
	}
}
