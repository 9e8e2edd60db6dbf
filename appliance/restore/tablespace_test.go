package restore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// snapshot lists what a directory holds (names, sizes, times), to show
// that nothing was written there.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		fi, _ := d.Info()
		fmt.Fprintf(&b, "%s %d %v\n", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return b.String()
}

// tablespaceDir makes a directory outside everything a restore writes,
// for the source server's tablespace.
func tablespaceDir(t *testing.T, c *pgtest.Cluster, name string) string {
	t.Helper()
	d := filepath.Join(sharedDir(t), name)
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.Chown(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// tablespaceSource is a server with one tablespace in its base backup and
// one created afterwards, both still in use by the running source.
func tablespaceSource(t *testing.T, major int) (f *fixture, inBackup, created string) {
	// No autovacuum: the source's own writes would blur what a restore
	// wrote into its tablespaces.
	c := pgtest.New(t, pgtest.Options{Conf: []string{"autovacuum = off"}, Major: major})
	inBackup, created = tablespaceDir(t, c, "ts_backup"), tablespaceDir(t, c, "ts_created")
	c.MustExec(t, "CREATE TABLESPACE ts_backup LOCATION '"+inBackup+"'",
		"CREATE TABLE scans TABLESPACE ts_backup AS SELECT g AS id FROM generate_series(1, 1000) g")
	f = newFixture(t, c)
	c.MustExec(t, "CREATE TABLESPACE ts_created LOCATION '"+created+"'",
		"CREATE TABLE letters TABLESPACE ts_created AS SELECT g AS id FROM generate_series(1, 2000) g",
		"INSERT INTO scans SELECT g FROM generate_series(1001, 1500) g", "CHECKPOINT")
	f.sync(t, 1)
	f.stop(t)
	return f, inBackup, created
}

// restoreWith restores to latest with extra options and starts the server.
func (f *fixture) restoreWith(t *testing.T, set func(*Options)) (*Server, string, error) {
	t.Helper()
	uid, gid, _ := ServerUser()
	top := sharedDir(t)
	if uid >= 0 {
		os.Chown(top, uid, gid)
	}
	opt := Options{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile, PGData: filepath.Join(top, "pgdata"),
		FetchProgram: clinicctl, OwnerUID: uid, OwnerGID: gid}
	set(&opt)
	if _, err := Run(context.Background(), opt); err != nil {
		return nil, opt.PGData, err
	}
	srv, err := StartServer(context.Background(), opt.PGData, top, uid, gid)
	if err != nil {
		return nil, opt.PGData, err
	}
	t.Cleanup(func() { srv.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return srv, opt.PGData, srv.WaitRecovered(ctx)
}

// A restore never writes where the backup's metadata or the WAL point: a
// tablespace of the backup goes inside the data directory, one created by
// the WAL is refused until mapped, then lands in the mapped directory; the
// source's tablespace directories, in use all along, do not change.
func TestRestoreTablespaces(t *testing.T) {
	f, inBackup, created := tablespaceSource(t, 15)
	before := snapshot(t, inBackup) + snapshot(t, created)
	t.Run("created by the WAL, not mapped", func(t *testing.T) {
		_, pgdata, err := f.restoreWith(t, func(*Options) {})
		if !errors.Is(err, ErrTablespaceOutside) || !strings.Contains(err.Error(), created) ||
			!strings.Contains(err.Error(), "--tablespace "+created+"=DIR") || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("got %v; want a refusal naming %s, that it is in use, and --tablespace", err, created)
		}
		if _, err := os.Stat(pgdata); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused restore wrote %s (%v); want nothing written", pgdata, err)
		}
	})
	t.Run("mapped", func(t *testing.T) {
		mapped := filepath.Join(sharedDir(t), "letters")
		srv, pgdata, err := f.restoreWith(t, func(o *Options) { o.Tablespaces = map[string]string{created: mapped} })
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			table, space, dir string
			rows              int64
		}{
			{"letters", "ts_created", mapped, 2000},
			{"scans", "ts_backup", filepath.Join(pgdata, TablespaceDataDir), 1500},
		} {
			var n int64
			var loc string
			conn := connect(t, srv.Connect)
			err := conn.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM "+tc.table+"), pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = $1", tc.space).Scan(&n, &loc)
			conn.Close(context.Background())
			if err != nil || n != tc.rows || !strings.HasPrefix(loc, tc.dir) {
				t.Errorf("%s: %d rows in tablespace at %q (%v); want %d rows under %s", tc.table, n, loc, err, tc.rows, tc.dir)
			}
			if files, _ := filepath.Glob(filepath.Join(tc.dir, "*", "PG_15_*", "*", "*")); tc.dir == mapped {
				files, _ = filepath.Glob(filepath.Join(tc.dir, "PG_15_*", "*", "*"))
				if len(files) == 0 {
					t.Errorf("no relation files under %s", tc.dir)
				}
			} else if len(files) == 0 {
				t.Errorf("no relation files under %s", tc.dir)
			}
		}
	})
	if after := snapshot(t, inBackup) + snapshot(t, created); after != before {
		t.Errorf("the source's tablespace directories changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// WAL that reaches the repository after a restore read it is read as it is
// served: a standby that follows the repository refuses the segment with a
// CREATE TABLESPACE that arrived later outside its data directory, and so
// never links to or writes into the source's live tablespace.
func TestStandbyRefusesLaterTablespace(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{Conf: []string{"autovacuum = off"}})
	f := newFixture(t, c)
	f.sync(t, 1)
	uid, gid, _ := ServerUser()
	top := sharedDir(t)
	if uid >= 0 {
		os.Chown(top, uid, gid)
	}
	opt := Options{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile, PGData: filepath.Join(top, "pgdata"),
		FetchProgram: clinicctl, OwnerUID: uid, OwnerGID: gid, Standby: true}
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	srv, err := StartServer(context.Background(), opt.PGData, top, uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })

	later := tablespaceDir(t, c, "ts_later")
	c.MustExec(t, "CREATE TABLESPACE ts_later LOCATION '"+later+"'",
		"CREATE TABLE later TABLESPACE ts_later AS SELECT g AS id FROM generate_series(1, 1000) g", "CHECKPOINT")
	f.sync(t, 1)
	links := filepath.Join(opt.PGData, "pg_tblspc")
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(srv.LogTail(1<<20), "in WAL that arrived after the restore checked it") {
		ents, _ := os.ReadDir(links)
		for _, e := range ents {
			if to, _ := os.Readlink(filepath.Join(links, e.Name())); to == later {
				t.Fatalf("the standby linked %s to the source's tablespace %s; want the segment refused", e.Name(), later)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal in the standby's log:\n%s", srv.LogTail(3000))
		}
		time.Sleep(50 * time.Millisecond) // polling the log for the refusal, a positive signal
	}
	if log := srv.LogTail(1 << 20); !strings.Contains(log, "--tablespace "+later+"=DIR") {
		t.Errorf("the refusal does not name %s and --tablespace:\n%s", later, srv.LogTail(3000))
	}
	var n int64
	queryRow(t, c, "SELECT count(*) FROM later", &n)
	if n != 1000 {
		t.Errorf("the source reads %d rows from its tablespace; want 1000", n)
	}
}

func TestGuardFlags(t *testing.T) {
	g := Guard{Mapped: []archive.LSN{0x3000028, 0x4000100}, From: 0x2000028, Checked: 0x5000000, To: 0}
	f := strings.Fields(g.Flags())
	if len(f) != 4 || f[0] != "--mapped-tablespaces" || f[2] != "--checked-wal" {
		t.Fatalf("Flags() = %q; want two flags with values", g.Flags())
	}
	back, err := ParseGuard(f[1], f[3])
	if err != nil || !slices.Equal(back.Mapped, g.Mapped) || back.From != g.From || back.Checked != g.Checked || back.To != g.To {
		t.Errorf("ParseGuard(%q, %q) = %+v, %v; want %+v", f[1], f[3], back, err, g)
	}
	if _, err := ParseGuard("", "0/1,0/2"); err == nil {
		t.Error("ParseGuard accepted two positions for --checked-wal; want FROM,CHECKED,TO refused")
	}
	if (Guard{}).Flags() != "" {
		t.Errorf("the zero guard's flags are %q; want none", Guard{}.Flags())
	}
}

func TestBeginsMidRecord(t *testing.T) {
	page := func(info uint16) []byte {
		b := make([]byte, longPageHeader)
		binary.LittleEndian.PutUint16(b[2:], info)
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
		want bool
	}{
		{"a record continues", page(pageContRecord | 0x0002), true},
		{"a record begins the segment", page(0x0002), false},
		{"a short read", page(pageContRecord)[:10], false},
	} {
		if got := beginsMidRecord(c.data); got != c.want {
			t.Errorf("%s: beginsMidRecord = %v; want %v", c.name, got, c.want)
		}
	}
}
