package pgcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The clinic dataset: a practice's records in schema "clinic", generated on
// the server with generate_series so that gigabytes load in minutes.
// pgbench's rows are mostly blank padding and compress twentyfold; these
// compress about as real records do. Notes are sentences drawn from a
// pool, each sentence words drawn from a medical-ish vocabulary with a
// Zipf-like law (rank r is picked with probability about 1/r, the law of
// word frequencies in real text). The pool is far larger than a
// compressor's window, so notes compress like prose (about 3x with zstd),
// not like repeated text.
const clinicDataSchema = `
CREATE SCHEMA IF NOT EXISTS clinic;
CREATE TABLE clinic.vocab (rank int PRIMARY KEY, word text NOT NULL);
CREATE TABLE clinic.phrase (id int PRIMARY KEY, body text NOT NULL);
CREATE TABLE clinic.patient (
	id bigserial PRIMARY KEY, mrn text UNIQUE NOT NULL, given text NOT NULL, family text NOT NULL,
	born date NOT NULL, sex char(1) NOT NULL, phone text, address text, insurer text, member_id text);
CREATE TABLE clinic.encounter (
	id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES clinic.patient(id),
	seen_at timestamptz NOT NULL, provider text NOT NULL, reason text NOT NULL, icd10 text NOT NULL,
	signed boolean NOT NULL DEFAULT false);
CREATE TABLE clinic.note (
	id bigserial PRIMARY KEY, encounter_id bigint NOT NULL REFERENCES clinic.encounter(id),
	written_at timestamptz NOT NULL, author text NOT NULL, body text NOT NULL);
CREATE TABLE clinic.lab (
	id bigserial PRIMARY KEY, encounter_id bigint NOT NULL REFERENCES clinic.encounter(id),
	code text NOT NULL, value numeric(8,2) NOT NULL, unit text NOT NULL, flag text, resulted_at timestamptz NOT NULL);
CREATE TABLE clinic.document (
	id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES clinic.patient(id), kind text NOT NULL,
	title text NOT NULL, pages int NOT NULL, bytes bigint NOT NULL, sha256 bytea NOT NULL,
	scanned_at timestamptz NOT NULL, path text NOT NULL);
`

// clinicDataIndexes are built after the bulk load, as a restore would.
const clinicDataIndexes = `
CREATE INDEX encounter_patient ON clinic.encounter (patient_id, seen_at);
CREATE INDEX note_encounter ON clinic.note (encounter_id);
CREATE INDEX lab_encounter ON clinic.lab (encounter_id);
CREATE INDEX lab_code ON clinic.lab (code, resulted_at);
CREATE INDEX document_patient ON clinic.document (patient_id, scanned_at);
CREATE INDEX patient_name ON clinic.patient (lower(family), lower(given));
`

// vocabulary is ordered roughly from the most frequent word in clinical
// notes to the rarest; a word's rank is its place here.
var vocabulary = strings.Fields(`
the and of to with no patient in is a for on was denies reports pain history
not left right at as mg daily by today bilateral normal blood pressure he she
has without follow up noted exam last year per continue plan stable mild
chronic acute medication symptoms since week days treatment returns chest
abdomen clear lungs heart regular rhythm rate murmur tenderness swelling
edema soft nontender distended bowel sounds present intact alert oriented
times three cranial nerves grossly neuro strength sensation reflexes gait
skin warm dry rash lesion wound healing well appearing distress afebrile
vital signs reviewed labs imaging ordered discussed risks benefits agrees
counseled diet exercise smoking cessation alcohol use occasional family
negative positive diabetes mellitus type two hypertension hyperlipidemia
asthma copd depression anxiety insomnia obesity hypothyroidism arthritis
osteoarthritis back neck shoulder knee hip ankle wrist headache migraine
dizziness nausea vomiting diarrhea constipation cough fever chills fatigue
weight loss gain shortness breath wheezing sputum sore throat congestion
ear otitis media sinusitis pharyngitis bronchitis pneumonia urinary tract
infection dysuria frequency urgency hematuria prostate breast pelvic pap
mammogram colonoscopy screening due vaccine influenza tetanus pneumococcal
shingles covid booster administered lot tolerated reaction injection site
metformin lisinopril amlodipine atorvastatin simvastatin levothyroxine
omeprazole sertraline escitalopram trazodone gabapentin ibuprofen
acetaminophen naproxen prednisone amoxicillin azithromycin doxycycline
cephalexin albuterol inhaler fluticasone insulin glargine lispro units
twice three times as needed bedtime morning refill prescribed started
stopped increased decreased dose tablet capsule oral topical cream drops
hemoglobin a1c glucose fasting cholesterol ldl hdl triglycerides creatinine
potassium sodium tsh vitamin d b12 ferritin cbc cmp lipid panel urinalysis
culture ekg sinus xray ultrasound mri ct scan referral cardiology
orthopedics dermatology neurology gastroenterology physical therapy
psychiatry counseling endocrinology nephrology ophthalmology podiatry
compliant adherence missed doses side effects tolerating improved worsened
unchanged resolved persistent intermittent radiating sharp dull burning
aching throbbing worse better rest activity night episode onset gradual
sudden trauma fall injury strain sprain fracture laceration sutures removed
dressing changed antibiotic course completed return precautions emergency
department urgent care phone call message portal caregiver daughter son
wife husband lives alone independent adls walker cane wheelchair home
health hospice advance directive code status full dnr goals care reviewed
education provided questions answered understanding verbalized visit
minutes spent greater than half coordination`)

// ClinicData sizes the clinic dataset.
type ClinicData struct {
	// MB is about how large the dataset's tables and indexes grow, in MB;
	// at least 1. A bench uses 2000 and more, a test a few.
	MB int
}

// scale gives the row counts for the size. Measured at 2000 MB: an
// encounter with its note, labs, a third of a scanned document and their
// indexes takes about 1.9 KB; the phrase pool at most 121 MB.
func (d ClinicData) scale() (patients, encounters, phrases int) {
	mb := max(d.MB, 1)
	return 30 * mb, 490 * mb, min(20000+500*mb, 1000000)
}

// ClinicDataSize is the size of the clinic dataset's tables and indexes
// in bytes.
const ClinicDataSize = `SELECT sum(pg_total_relation_size(c.oid))::int8 FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'clinic' AND c.relkind IN ('r', 'm')`

// ClinicDataInit creates and fills the clinic dataset.
func (c *Cluster) ClinicDataInit(ctx context.Context, d ClinicData) error {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	patients, encounters, phrases := d.scale()
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"schema", clinicDataSchema, nil},
		{"vocabulary", `INSERT INTO clinic.vocab SELECT ord, w FROM unnest($1::text[]) WITH ORDINALITY AS v(w, ord)`, []any{vocabulary}},
		{"phrases", clinicPhrasesSQL, []any{phrases, len(vocabulary)}},
		{"patients", clinicPatientsSQL, []any{patients}},
		{"encounters", clinicEncountersSQL, []any{encounters, patients}},
		{"notes", clinicNotesSQL + ` FROM clinic.encounter e`, []any{phrases}},
		{"labs", clinicLabsSQL, nil},
		{"documents", clinicDocumentsSQL, []any{encounters / 3, patients}},
		{"indexes", clinicDataIndexes, nil},
		{"report", clinicReportSQL, nil},
		{"analyze", `ANALYZE`, nil},
	}
	for _, s := range steps {
		if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("pgtest: clinic dataset: %s: %w", s.what, err)
		}
	}
	return nil
}

// clinicPhrasesSQL makes $1 sentences of 4 to 18 words, each word of rank
// r in 1..$2 with probability about 1/r. The picks are materialized first:
// random() in a join condition would be evaluated once per pair of rows.
const clinicPhrasesSQL = `
WITH picks AS MATERIALIZED (
	SELECT p, k, least($2::int, floor(exp(random() * ln($2::int + 1)))::int) AS r
	FROM generate_series(1, $1::int) p, LATERAL generate_series(1, 4 + floor(random() * 15)::int + 0 * p) k)
INSERT INTO clinic.phrase
SELECT p, string_agg(v.word, ' ' ORDER BY k) || '.' FROM picks JOIN clinic.vocab v ON v.rank = picks.r GROUP BY p`

const clinicPatientsSQL = `
INSERT INTO clinic.patient (mrn, given, family, born, sex, phone, address, insurer, member_id)
SELECT 'MRN' || lpad(g::text, 8, '0'),
	(ARRAY['Maria','James','Linda','Robert','Aiko','Omar','Grace','Wei','Fatima','John','Elena','Samuel'])[1 + g % 12],
	(ARRAY['Garcia','Smith','Nguyen','Johnson','Okafor','Kowalski','Brown','Haddad','Lee','Martin','Rossi','Silva','Patel'])[1 + (g * 7) % 13] || '-' || to_hex(g),
	date '1930-01-01' + floor(random() * 33000)::int, (ARRAY['F','M'])[1 + g % 2],
	'555-' || lpad(floor(random() * 10000000)::int::text, 7, '0'),
	floor(random() * 9000 + 100)::int || ' ' || (ARRAY['Oak','Main','Elm','Cedar','Lake','Hill'])[1 + g % 6] || ' Street',
	(ARRAY['Aetna','Blue Cross','Cigna','Medicare','Medicaid','United','self-pay'])[1 + (g * 3) % 7],
	upper(substr(md5(g::text), 1, 12))
FROM generate_series(1, $1::int) g`

const clinicEncountersSQL = `
INSERT INTO clinic.encounter (patient_id, seen_at, provider, reason, icd10, signed)
SELECT 1 + floor(random() * $2::int)::int, now() - random() * interval '1800 days',
	(ARRAY['Dr Alvarez','Dr Chen','Dr Okoye','NP Weber','PA Lindqvist'])[1 + g % 5],
	(ARRAY['annual physical','follow-up','acute visit','medication review','lab review','vaccination','blood pressure check','diabetes follow-up','back pain','cough'])[1 + floor(random() * 10)::int],
	(ARRAY['I10','E11.9','E78.5','J06.9','M54.5','F41.1','Z00.00','Z23','K21.9','J45.909','N39.0','R51.9'])[1 + floor(random() * 12)::int],
	random() < 0.97
FROM generate_series(1, $1::int) g`

// clinicNotesSQL writes one note per encounter e from $1 pooled phrases:
// vitals, then 4 to about 93 sentences (a long-tailed length, a median of
// about 12: some 800 characters). The phrase picks reference e so they are drawn per note.
const clinicNotesSQL = `
INSERT INTO clinic.note (encounter_id, written_at, author, body)
SELECT e.id, e.seen_at + interval '25 minutes', e.provider,
	'Vitals: BP ' || (100 + floor(random() * 60))::int || '/' || (60 + floor(random() * 35))::int ||
	', HR ' || (50 + floor(random() * 60))::int || ', T ' || round((36 + random() * 2.5)::numeric, 1) ||
	' C, SpO2 ' || (92 + floor(random() * 8))::int || '%. ' ||
	(SELECT string_agg(ph.body, ' ' ORDER BY picks.k)
	 FROM (SELECT k, 1 + floor(random() * $1::int)::int AS pid
	       FROM generate_series(1, 3 + floor(exp(random() * 4.5))::int + 0 * e.id::int) k OFFSET 0) picks
	 JOIN clinic.phrase ph ON ph.id = picks.pid)`

const clinicLabsSQL = `
INSERT INTO clinic.lab (encounter_id, code, value, unit, flag, resulted_at)
SELECT e.id, t.code, round((t.lo + random() * (t.hi - t.lo) * 1.3)::numeric, 2), t.unit,
	CASE WHEN random() < 0.12 THEN 'H' WHEN random() < 0.06 THEN 'L' END, e.seen_at + interval '1 day'
FROM clinic.encounter e
JOIN (VALUES ('4548-4', 4.5, 9.5, '%'), ('2345-7', 70, 140, 'mg/dL'), ('2093-3', 120, 260, 'mg/dL'),
	('2160-0', 0.5, 1.4, 'mg/dL'), ('2823-3', 3.4, 5.2, 'mmol/L'), ('3016-3', 0.4, 4.5, 'mIU/L'),
	('718-7', 11, 17, 'g/dL')) AS t(code, lo, hi, unit)
	ON (hashint8(e.id) # hashtext(t.code)) & 7 < 3`

const clinicDocumentsSQL = `
INSERT INTO clinic.document (patient_id, kind, title, pages, bytes, sha256, scanned_at, path)
SELECT 1 + floor(random() * $2::int)::int,
	(ARRAY['referral letter','insurance card','consent form','outside records','imaging report','lab requisition'])[1 + g % 6],
	'Scan ' || g || ' from front desk', 1 + floor(random() * 12)::int, 40000 + floor(random() * 3000000)::int,
	sha256(int8send(g) || int8send(floor(random() * 1e15)::int8)), now() - random() * interval '1800 days',
	'/scans/' || to_char(now() - random() * interval '1800 days', 'YYYY/MM') || '/' || md5(g::text) || '.pdf'
FROM generate_series(1, $1::int) g`

// clinicReportSQL (re)creates the report table a practice's billing
// export drops and builds again every week.
const clinicReportSQL = `
DROP TABLE IF EXISTS clinic.report_daily;
CREATE TABLE clinic.report_daily AS
SELECT date_trunc('day', seen_at) AS day, provider, count(*) AS visits, count(*) FILTER (WHERE NOT signed) AS unsigned
FROM clinic.encounter GROUP BY 1, 2;
CREATE INDEX report_daily_day ON clinic.report_daily (day)`

// ClinicDataVisits records n visits, each in its own transaction as the
// front desk and the doctor would: an encounter, its note and labs; then
// signs an earlier unsigned encounter and amends a random note.
func ClinicDataVisits(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, d ClinicData, n int) error {
	patients, encounters, phrases := d.scale()
	for range n {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `
WITH e AS (
	INSERT INTO clinic.encounter (patient_id, seen_at, provider, reason, icd10)
	VALUES ($2, now(), 'Dr Chen', 'follow-up', 'I10') RETURNING *),
n AS (`+clinicNotesSQL+` FROM e RETURNING encounter_id)
INSERT INTO clinic.lab (encounter_id, code, value, unit, resulted_at)
SELECT encounter_id, '2345-7', 70 + $3::int % 90, 'mg/dL', now() FROM n`, phrases, 1+rng.IntN(patients), rng.IntN(1000))
			if err == nil {
				_, err = tx.Exec(ctx, `UPDATE clinic.encounter SET signed = true
					WHERE id = (SELECT id FROM clinic.encounter WHERE NOT signed LIMIT 1)`)
			}
			if err == nil {
				_, err = tx.Exec(ctx, `UPDATE clinic.note SET body = body || ' Addendum: reviewed results with patient by phone.'
					WHERE id = $1`, 1+rng.IntN(encounters))
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("pgtest: clinic visit: %w", err)
		}
	}
	return nil
}

// ClinicDataMaintenance is a practice's nightly maintenance window:
// vacuum, a reindex of the busiest table, and the report table dropped and
// recreated.
func ClinicDataMaintenance(ctx context.Context, conn *pgx.Conn) error {
	for _, sql := range []string{`VACUUM (ANALYZE) clinic.encounter, clinic.note, clinic.lab`,
		`REINDEX TABLE clinic.encounter`, clinicReportSQL} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgtest: clinic maintenance: %w", err)
		}
	}
	return nil
}
