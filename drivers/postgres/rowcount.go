package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TableRows is one table's row count.
type TableRows struct {
	Database string `json:"database"`
	Table    string `json:"table"` // schema.name
	Rows     int64  `json:"rows"`
}

// RowCounts are the row counts of the tables a role may read, each
// database counted in one snapshot.
type RowCounts struct {
	At     time.Time   `json:"at"`
	Tables []TableRows `json:"tables"`
	// Skipped says which databases could not be counted, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// maxCountedTables bounds the work on a server with a huge schema.
const maxCountedTables = 500

// CountRows counts the rows of every ordinary table the role may read in
// every database it may connect to, at most maxCountedTables in all, each
// count bounded by timeout. A database that cannot be counted is listed in
// Skipped, not an error: counting is evidence for a drill, never a reason
// to fail a backup.
func CountRows(ctx context.Context, dbURL string, timeout time.Duration) (RowCounts, error) {
	cfg, err := plainConfig(dbURL)
	if err != nil {
		return RowCounts{}, err
	}
	dbs, err := listDatabases(ctx, cfg)
	if err != nil {
		return RowCounts{}, err
	}
	rc := RowCounts{At: time.Now().UTC()}
	for _, db := range dbs {
		if len(rc.Tables) >= maxCountedTables {
			rc.Skipped = append(rc.Skipped, db+": more than "+fmt.Sprint(maxCountedTables)+" tables counted already")
			continue
		}
		tables, err := countDatabase(ctx, cfg, db, timeout, maxCountedTables-len(rc.Tables))
		if err != nil {
			rc.Skipped = append(rc.Skipped, db+": "+err.Error())
			continue
		}
		rc.Tables = append(rc.Tables, tables...)
	}
	return rc, nil
}

// countDatabase counts one database's readable tables in a read-only
// snapshot.
func countDatabase(ctx context.Context, cfg *pgx.ConnConfig, db string, timeout time.Duration, limit int) ([]TableRows, error) {
	conn, err := connectDB(ctx, cfg, db, nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("postgres: count rows in %s: %w", db, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", timeout.Milliseconds())); err != nil {
		return nil, fmt.Errorf("postgres: count rows in %s: %w", db, err)
	}
	rows, _ := tx.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg_toast%' AND has_table_privilege(c.oid, 'SELECT')
		ORDER BY 1, 2 LIMIT $1`, limit)
	names, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Schema, Name string }])
	if err != nil {
		return nil, fmt.Errorf("postgres: list tables in %s: %w", db, err)
	}
	out := make([]TableRows, 0, len(names))
	for _, t := range names {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{t.Schema, t.Name}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("postgres: count rows of %s.%s in %s: %w", t.Schema, t.Name, db, err)
		}
		out = append(out, TableRows{Database: db, Table: t.Schema + "." + t.Name, Rows: n})
	}
	return out, nil
}
