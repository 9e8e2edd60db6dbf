package postgres

// Maintenance: the VACUUM (ANALYZE) and REINDEX the practice's old tools ran
// by hand, over ordinary (not replication) connections to each database.
//
// Permissions. On PostgreSQL 15 and 16 there is no privilege that allows
// only maintenance: a table can be vacuumed by its owner, by a member of
// the owning role, by the owner of its database, or by a superuser, and
// REINDEX TABLE needs the table's owner (or a member of that role) or a
// superuser. What the practice can grant the box's role, narrowest first:
//
//	-- vacuum and analyze every table of one database (not REINDEX):
//	ALTER DATABASE emr OWNER TO clinicbox;
//	-- vacuum, analyze and reindex the tables the application role owns
//	-- (this also lets the box read and write them):
//	GRANT emr_owner TO clinicbox;
//	-- PostgreSQL 17 and newer only:
//	GRANT pg_maintain TO clinicbox;
//
// Tables the role may not maintain are reported one by one as skipped,
// with that advice; they never fail the others. The role also needs CONNECT
// on each database and a pg_hba.conf line for ordinary connections.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// VacuumOptions choose what Vacuum does. The zero value vacuums and analyzes
// every table of every database the role can connect to.
type VacuumOptions struct {
	// Databases limits the run to these databases; empty means every
	// database that accepts connections, except templates.
	Databases []string
	// Reindex rebuilds each table's indexes with REINDEX TABLE
	// CONCURRENTLY after vacuuming it (no blocking of writes).
	Reindex bool
	// Deadline is when the maintenance window closes: no table is started
	// at or after it; the table in progress finishes. Zero means none.
	Deadline time.Time
	// Now is the clock for Deadline; nil means time.Now.
	Now func() time.Time
	// LockTimeout bounds the wait for a table lock; zero means 30 s.
	LockTimeout time.Duration
}

// Report is what a maintenance run did, database by database.
type Report struct {
	Databases []DatabaseReport
}

// DatabaseReport is one database's part of a run. Err is set when the
// database could not be maintained at all (no connection, no CONNECT).
type DatabaseReport struct {
	Name   string
	Err    error
	Tables []TableReport
}

// TableReport is one table. One of Done, Skipped, NotStarted or Err
// describes the VACUUM; Reindexed, ReindexSkipped or Err the REINDEX after
// it, when asked for.
type TableReport struct {
	Schema, Name   string
	Done           bool          // vacuumed and analyzed
	Skipped        string        // why the server or the role's rights skipped it
	NotStarted     bool          // the window closed before its turn
	Reindexed      bool          // indexes rebuilt
	ReindexSkipped string        // why its indexes were not rebuilt
	Err            error         // a statement failed
	Duration       time.Duration // time spent on it
}

// Table returns the table's qualified name.
func (t TableReport) Table() string { return t.Schema + "." + t.Name }

// Vacuum runs VACUUM (ANALYZE) on every user table of the chosen databases,
// and REINDEX TABLE CONCURRENTLY when asked, as the role in dbURL (a
// replication URL is accepted: the replication parameter is dropped). It
// returns an error only when no database could be listed; per-database and
// per-table problems are in the Report.
func Vacuum(ctx context.Context, dbURL string, opt VacuumOptions) (Report, error) {
	cfg, err := plainConfig(dbURL)
	if err != nil {
		return Report{}, err
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.LockTimeout == 0 {
		opt.LockTimeout = 30 * time.Second
	}
	dbs := opt.Databases
	if len(dbs) == 0 {
		if dbs, err = listDatabases(ctx, cfg); err != nil {
			return Report{}, err
		}
	}
	var rep Report
	for _, db := range dbs {
		rep.Databases = append(rep.Databases, maintainDatabase(ctx, cfg, db, opt))
	}
	return rep, nil
}

// plainConfig parses the URL for an ordinary connection.
func plainConfig(dbURL string) (*pgx.ConnConfig, error) {
	clean, t, err := prepareURL(dbURL, func(q url.Values) { q.Del("replication") })
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(clean)
	if err != nil {
		return nil, &Error{Problem: "the database URL cannot be read", Fix: "use the form postgres://ROLE:PASSWORD@SERVER:5432/postgres", Err: redact(err)}
	}
	delete(cfg.RuntimeParams, "replication")
	if err := t.apply(&cfg.Config); err != nil {
		return nil, err
	}
	return cfg, nil
}

func connectDB(ctx context.Context, cfg *pgx.ConnConfig, db string, onNotice pgconn.NoticeHandler) (*pgx.Conn, error) {
	c := cfg.Copy()
	if db != "" {
		c.Database = db
	}
	c.OnNotice = onNotice
	conn, err := pgx.ConnectConfig(ctx, c)
	if err != nil {
		return nil, explainConnect(&c.Config, err)
	}
	return conn, nil
}

func listDatabases(ctx context.Context, cfg *pgx.ConnConfig) ([]string, error) {
	conn, err := connectDB(ctx, cfg, "", nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname`)
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: list databases: %w", err)
	}
	return dbs, nil
}

// candidate is a table and what the role may do with it.
type candidate struct {
	schema, name, owner string
	ownerIsSuper        bool
	schemaUsage         bool
	mayVacuum           bool
	mayReindex          bool
	hasIndexes          bool
}

// tablesQuery lists user tables and materialized views with the role's
// rights over them, following PostgreSQL 15's rules (owner or member of the
// owner, database owner for VACUUM, superuser); $1 is true on 17+, where
// the MAINTAIN privilege decides.
const tablesQuery = `
SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner),
	(SELECT rolsuper FROM pg_roles WHERE oid = c.relowner), has_schema_privilege(n.oid, 'USAGE'),
	CASE WHEN $1 THEN has_table_privilege(c.oid, 'MAINTAIN')
	ELSE s.rolsuper OR pg_has_role(c.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE') END,
	CASE WHEN $1 THEN has_table_privilege(c.oid, 'MAINTAIN')
	ELSE s.rolsuper OR pg_has_role(c.relowner, 'USAGE') END,
	c.relhasindex
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_database d ON d.datname = current_database()
JOIN pg_roles s ON s.rolname = current_user
WHERE c.relkind IN ('r', 'm') AND NOT c.relisshared
	AND n.nspname NOT IN ('pg_catalog', 'information_schema')
	AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
ORDER BY n.nspname, c.relname`

func maintainDatabase(ctx context.Context, cfg *pgx.ConnConfig, db string, opt VacuumOptions) DatabaseReport {
	rep := DatabaseReport{Name: db}
	var notices []string
	conn, err := connectDB(ctx, cfg, db, func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Severity == "WARNING" {
			notices = append(notices, n.Message)
		}
	})
	if err != nil {
		rep.Err = fmt.Errorf("postgres: maintain database %s: %w", db, err)
		return rep
	}
	defer conn.Close(context.Background())
	tables, v17, err := listTables(ctx, conn, opt)
	if err != nil {
		rep.Err = fmt.Errorf("postgres: maintain database %s: %w", db, err)
		return rep
	}
	m := tableMaint{conn: conn, user: conn.Config().User, db: db, v17: v17, opt: opt, notices: &notices}
	for _, t := range tables {
		rep.Tables = append(rep.Tables, m.table(ctx, t))
	}
	return rep
}

// listTables lists the database's tables for maintenance, says whether the
// server is PostgreSQL 17 or later, and sets the lock timeout.
func listTables(ctx context.Context, conn *pgx.Conn, opt VacuumOptions) (tables []candidate, v17 bool, err error) {
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int >= 170000`).Scan(&v17); err != nil {
		return nil, false, err
	}
	rows, _ := conn.Query(ctx, tablesQuery, v17)
	tables, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (c candidate, err error) {
		err = r.Scan(&c.schema, &c.name, &c.owner, &c.ownerIsSuper, &c.schemaUsage, &c.mayVacuum, &c.mayReindex, &c.hasIndexes)
		return c, err
	})
	if err == nil {
		_, err = conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", opt.LockTimeout.Milliseconds()))
	}
	if err != nil {
		return nil, false, fmt.Errorf("list tables: %w", err)
	}
	return tables, v17, nil
}

// tableMaint is what the upkeep of each table of one database needs.
type tableMaint struct {
	conn     *pgx.Conn
	user, db string
	v17      bool
	opt      VacuumOptions
	notices  *[]string // the server's warnings, gathered by the connection
}

// table vacuums and analyzes one table, and reindexes it when asked, while
// the window is open and the role may.
func (m tableMaint) table(ctx context.Context, t candidate) TableReport {
	tr := TableReport{Schema: t.schema, Name: t.name}
	switch {
	case !m.opt.Deadline.IsZero() && !m.opt.Now().Before(m.opt.Deadline):
		tr.NotStarted = true
		return tr
	case ctx.Err() != nil:
		tr.NotStarted = true
		return tr
	case !t.mayVacuum || !t.schemaUsage:
		tr.Skipped = noMaintainRight(m.user, m.db, t, m.v17)
		return tr
	}
	start := m.opt.Now()
	*m.notices = (*m.notices)[:0]
	tr.Err = run(ctx, m.conn, "VACUUM (ANALYZE, SKIP_LOCKED) "+pgx.Identifier{t.schema, t.name}.Sanitize())
	if tr.Err == nil && len(*m.notices) > 0 {
		tr.Skipped = strings.Join(*m.notices, "; ")
	}
	tr.Done = tr.Err == nil && tr.Skipped == ""
	if tr.Done && m.opt.Reindex && t.hasIndexes {
		tr.Reindexed, tr.ReindexSkipped, tr.Err = reindex(ctx, m.conn, m.user, t, m.opt)
	}
	tr.Duration = m.opt.Now().Sub(start)
	return tr
}

// reindex rebuilds one table's indexes when the role may and the window is
// still open.
func reindex(ctx context.Context, conn *pgx.Conn, user string, t candidate, opt VacuumOptions) (done bool, skipped string, err error) {
	switch {
	case !t.mayReindex:
		return false, fmt.Sprintf("role %q may not reindex it (owned by %q); %s", user, t.owner, ownerAdvice(user, t)), nil
	case !opt.Deadline.IsZero() && !opt.Now().Before(opt.Deadline):
		return false, "the maintenance window closed", nil
	}
	if err := run(ctx, conn, "REINDEX (CONCURRENTLY) TABLE "+pgx.Identifier{t.schema, t.name}.Sanitize()); err != nil {
		return false, "", err
	}
	return true, "", nil
}

func run(ctx context.Context, conn *pgx.Conn, sql string) error {
	if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
			return fmt.Errorf("postgres: %s: the table was locked by other work longer than the lock timeout; it is tried again next time: %w", sql, err)
		}
		return fmt.Errorf("postgres: %s: %w", sql, err)
	}
	return nil
}

func noMaintainRight(user, db string, t candidate, v17 bool) string {
	switch {
	case !t.schemaUsage:
		return fmt.Sprintf("role %q may not use schema %q; run GRANT USAGE ON SCHEMA %s TO %s; on the clinic server",
			user, t.schema, pgx.Identifier{t.schema}.Sanitize(), user)
	case v17:
		return fmt.Sprintf("role %q may not maintain it; run GRANT pg_maintain TO %s; on the clinic server", user, user)
	}
	return fmt.Sprintf("role %q may not vacuum it (owned by %q; PostgreSQL before 17 allows only the owner, its members, the database owner or a superuser); run ALTER DATABASE %s OWNER TO %s; or %s",
		user, t.owner, pgx.Identifier{db}.Sanitize(), user, ownerAdvice(user, t))
}

// ownerAdvice says how the role can come to own a table's rights. Never
// advise membership in a superuser role.
func ownerAdvice(user string, t candidate) string {
	if t.ownerIsSuper {
		return fmt.Sprintf("give the table to the application's role (ALTER TABLE %s OWNER TO ...;) and grant that role to %s, or leave this table's maintenance to the superuser",
			pgx.Identifier{t.schema, t.name}.Sanitize(), user)
	}
	return fmt.Sprintf("run GRANT %s TO %s; as a superuser, or leave this table's maintenance to its owner", pgx.Identifier{t.owner}.Sanitize(), user)
}
