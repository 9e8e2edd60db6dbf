package restore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Checks are what a drill runs on the restored database besides its own
// integrity checks, read from a check file:
//
//	# comments
//	database emr              -- switch database (default postgres)
//	count public.encounters   -- record the row count of a table
//	SELECT count(*) > 0 FROM patients;   -- any SQL; a single false fails
type Checks struct {
	Steps []CheckStep
}

// CheckStep is one line or statement of a check file.
type CheckStep struct {
	Database string
	Count    string // a table to count, or ""
	// Recorded, with Count, is the table's row count on the original
	// server when the backup was taken: a table that had rows must still
	// have some.
	Recorded *RecordedCount
	SQL      string
}

// RecordedCount is a table's row count on the original server.
type RecordedCount struct {
	Rows int64
	At   time.Time
}

// compare judges a restored table's row count against the recorded one.
// Rows deleted since the recording are normal; a table emptied is not.
func (rc *RecordedCount) compare(res CheckResult, n int64) CheckResult {
	if rc == nil {
		return res
	}
	at := rc.At.UTC().Format("2006-01-02 15:04 MST")
	res.Detail = fmt.Sprintf("%d (%d on the server at %s)", n, rc.Rows, at)
	if rc.Rows > 0 && n == 0 {
		res.OK = false
		res.Detail = fmt.Sprintf("empty, but it had %d rows on the server at %s", rc.Rows, at)
	}
	return res
}

// ParseChecks reads a check file.
func ParseChecks(r io.Reader) (*Checks, error) {
	c := &Checks{}
	db := "postgres"
	var stmt strings.Builder
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case stmt.Len() == 0 && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "--")):
		case stmt.Len() == 0 && strings.HasPrefix(line, "database "):
			db = strings.TrimSpace(strings.TrimPrefix(line, "database "))
		case stmt.Len() == 0 && strings.HasPrefix(line, "count "):
			t := strings.TrimSpace(strings.TrimPrefix(line, "count "))
			if strings.ContainsAny(t, " ;") || t == "" {
				return nil, fmt.Errorf("restore: check file line %d: count takes one table name, like public.encounters", n)
			}
			c.Steps = append(c.Steps, CheckStep{Database: db, Count: t})
		default:
			stmt.WriteString(line + "\n")
			if strings.HasSuffix(line, ";") {
				c.Steps = append(c.Steps, CheckStep{Database: db, SQL: stmt.String()})
				stmt.Reset()
			}
		}
	}
	if stmt.Len() > 0 {
		c.Steps = append(c.Steps, CheckStep{Database: db, SQL: stmt.String()})
	}
	return c, sc.Err()
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// runStep runs one step on an open connection.
func runStep(ctx context.Context, conn *pgx.Conn, st CheckStep) CheckResult {
	if st.Count != "" {
		var n int64
		schema, table, ok := strings.Cut(st.Count, ".")
		id := pgx.Identifier{schema}
		if ok {
			id = pgx.Identifier{schema, table}
		}
		err := conn.QueryRow(ctx, "SELECT count(*) FROM "+id.Sanitize()).Scan(&n)
		if err != nil {
			return CheckResult{Name: "rows in " + st.Count, Detail: err.Error()}
		}
		return st.Recorded.compare(CheckResult{Name: "rows in " + st.Count, OK: true, Detail: fmt.Sprint(n)}, n)
	}
	name := strings.Join(strings.Fields(st.SQL), " ")
	rows, err := conn.Query(ctx, st.SQL)
	if err != nil {
		return CheckResult{Name: name, Detail: err.Error()}
	}
	defer rows.Close()
	res := CheckResult{Name: name, OK: true}
	var vals []string
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return CheckResult{Name: name, Detail: err.Error()}
		}
		if len(v) == 1 {
			if b, ok := v[0].(bool); ok && !b {
				res.OK = false
			}
		}
		vals = append(vals, fmt.Sprint(v...))
	}
	if err := rows.Err(); err != nil {
		return CheckResult{Name: name, Detail: err.Error()}
	}
	res.Detail = strings.Join(vals, "; ")
	return res
}

// integrityChecks are run in every database of the restored cluster.
var integrityChecks = []struct{ name, sql string }{
	{"catalog: every relation has a namespace",
		`SELECT count(*) = 0 FROM pg_class c LEFT JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.oid IS NULL`},
	{"amcheck: B-tree indexes",
		`SELECT count(*) >= 0 FROM (SELECT bt_index_check(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		 JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relpersistence = 'p' AND i.indisready AND i.indisvalid) s`},
	{"amcheck: table pages",
		`SELECT count(*) = 0 FROM pg_class c, verify_heapam(c.oid) WHERE c.relkind = 'r' AND c.relpersistence = 'p'`},
}
