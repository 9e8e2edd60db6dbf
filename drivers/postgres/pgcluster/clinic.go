package pgcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClinicSchema is a small EMR-like schema: patients, their encounters and
// the clinical notes of each encounter. Names are synthetic.
const ClinicSchema = `
CREATE TABLE IF NOT EXISTS patients (
	id bigserial PRIMARY KEY,
	mrn text UNIQUE NOT NULL,
	name text NOT NULL,
	born date NOT NULL
);
CREATE TABLE IF NOT EXISTS encounters (
	id bigserial PRIMARY KEY,
	patient_id bigint NOT NULL REFERENCES patients(id),
	seen_at timestamptz NOT NULL DEFAULT now(),
	reason text NOT NULL,
	signed boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS encounters_patient ON encounters(patient_id);
CREATE TABLE IF NOT EXISTS notes (
	id bigserial PRIMARY KEY,
	encounter_id bigint NOT NULL REFERENCES encounters(id) ON DELETE CASCADE,
	written_at timestamptz NOT NULL DEFAULT now(),
	body text NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_encounter ON notes(encounter_id);
`

var reasons = []string{"annual physical", "follow-up", "flu symptoms", "lab review", "vaccination", "blood pressure check"}

// ClinicInit creates the schema and some patients.
func (c *Cluster) ClinicInit(ctx context.Context, patients int) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, ClinicSchema); err != nil {
		return fmt.Errorf("pgcluster: clinic schema: %w", err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO patients (mrn, name, born)
		SELECT 'MRN' || lpad(g::text, 7, '0'), 'Patient ' || g, date '1940-01-01' + (g * 37 % 30000)
		FROM generate_series(1, $1) g ON CONFLICT DO NOTHING`, patients)
	return err
}

// ClinicVisit records one visit: an encounter with a note, in one
// transaction, as the front desk and the doctor would.
func ClinicVisit(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, patients int) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO encounters (patient_id, reason) VALUES ($1, $2) RETURNING id`,
		1+rng.IntN(patients), reasons[rng.IntN(len(reasons))]).Scan(&id)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO notes (encounter_id, body) VALUES ($1, repeat('Clinical note text. ', $2))`, id, 5+rng.IntN(50)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// ClinicWorkload records visits at about the given rate until ctx ends.
func (c *Cluster) ClinicWorkload(ctx context.Context, perSecond float64, patients int) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := ClinicVisit(ctx, conn, rng, patients); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}
