package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
)

// clinicVisits is a busy practice's day: visits, each an encounter with
// its note and labs, an earlier encounter signed and a note amended.
const clinicVisits = 800

// loadClinic loads the clinic dataset into the cluster, beside pgbench's
// tables, once: vacuumed and checkpointed as a database in service is, so
// that the first measurement does not pay for the load's hint bits.
func (b *bench) loadClinic(ctx context.Context) error {
	if b.clinicBytes > 0 {
		return nil
	}
	b.logf("loading the clinic dataset (about %d MB)", b.cfg.clinicMB)
	start := time.Now()
	if err := b.pg.ClinicDataInit(ctx, pgcluster.ClinicData{MB: b.cfg.clinicMB}); err != nil {
		return err
	}
	if err := b.pg.Exec(ctx, "VACUUM (ANALYZE)", "CHECKPOINT"); err != nil {
		return err
	}
	if err := b.scalar(ctx, pgcluster.ClinicDataSize, &b.clinicBytes); err != nil {
		return err
	}
	took := time.Since(start)
	b.logf("%.2f GB of clinic data in %s", float64(b.clinicBytes)/1e9, seconds(took))
	b.walNotes = append(b.walNotes, fmt.Sprintf("clinic dataset (drivers/postgres/pgcluster/clinicdata.go): %.2f GB of tables and indexes in schema clinic "+
		"(patients, encounters, notes of Zipf-distributed medical vocabulary that compress about 3.3x with zstd, labs, scanned-document metadata), "+
		"generated on the server in %s; the cluster also holds the pgbench database", float64(b.clinicBytes)/1e9, seconds(took)))
	return nil
}

// clinicBase compares base backups of the cluster holding the clinic
// dataset.
func (b *bench) clinicBase(ctx context.Context) *section {
	if err := b.loadClinic(ctx); err != nil {
		return &section{title: "Base backup, clinic dataset", err: err}
	}
	return b.baseBackupOf(ctx, "Base backup, clinic dataset", false, func(mb float64) string {
		return fmt.Sprintf("the cluster holds %.2f GB of clinic data and %.2f GB of pgbench data; clinicctl stored %.0f MB",
			float64(b.clinicBytes)/1e9, float64(b.dataBytes)/1e9, mb)
	})
}

// clinicBacklog drains a day of the clinic's WAL as a backlog, as after a
// day the box was off.
func (b *bench) clinicBacklog(ctx context.Context) *section {
	return b.clinicOutage(ctx, "WAL backlog drain, a clinic day", "bench_clinic_anchor", 1)
}

// clinicBacklogDays drains several days of the clinic's WAL, as after a
// long outage: hours of WAL, where clinicctl's fixed start-up cost no
// longer dominates the drain as it does a single day's.
func (b *bench) clinicBacklogDays(ctx context.Context) *section {
	title := fmt.Sprintf("WAL backlog drain, %d clinic days", b.cfg.clinicDays)
	return b.clinicOutage(ctx, title, "bench_clinic_days_anchor", b.cfg.clinicDays)
}

// clinicOutage drains days of the clinic's workload, written while no
// streamer ran.
func (b *bench) clinicOutage(ctx context.Context, title, anchor string, days int) *section {
	if err := b.loadClinic(ctx); err != nil {
		return &section{title: title, err: err}
	}
	return b.drain(ctx, drainSpec{title: title, anchor: anchor,
		about: fmt.Sprintf("%d day(s) of the clinic dataset's workload are written while no streamer runs, held by a slot; each day %d visits "+
			"(each an encounter, its note and a lab result in one transaction, an earlier encounter signed, a note amended), "+
			"then the nightly maintenance (VACUUM ANALYZE of the busy tables, REINDEX of the encounters, the report table dropped and recreated). ", days, clinicVisits),
		generate: func(ctx context.Context) (pglogrepl.LSN, pglogrepl.LSN, error) { return b.clinicDays(ctx, days) }})
}

// clinicDays runs days of clinic workload and returns the WAL they wrote.
func (b *bench) clinicDays(ctx context.Context, days int) (from, to pglogrepl.LSN, err error) {
	b.logf("writing %d clinic day(s) of WAL (%d visits a day, maintenance each night)", days, clinicVisits)
	if from, err = b.currentLSN(ctx); err != nil {
		return 0, 0, err
	}
	conn, err := b.pg.Connect(ctx, "postgres")
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewPCG(1, 2))
	for range days {
		if err := pgcluster.ClinicDataVisits(ctx, conn, rng, pgcluster.ClinicData{MB: b.cfg.clinicMB}, clinicVisits); err != nil {
			return 0, 0, err
		}
		if err := pgcluster.ClinicDataMaintenance(ctx, conn); err != nil {
			return 0, 0, err
		}
	}
	to, err = b.currentLSN(ctx)
	return from, to, err
}
