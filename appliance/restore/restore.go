package restore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
)

// Options describe a restore.
type Options struct {
	Repo         *archive.Repo
	Identities   []age.Identity
	IdentityFile string // the identity path restore_command passes to wal-fetch
	PGData       string // an empty or missing directory
	Target       Target
	// Tablespaces maps a tablespace's original location (in the backup or
	// in the WAL to replay) to the directory the operator chose for it.
	Tablespaces map[string]string
	// TablespaceDir, when set, receives every tablespace not mapped, one
	// directory per OID (a drill's scratch directory). Empty means: a
	// tablespace of the backup goes inside PGData (pg_tblspc_data/OID), and
	// one the WAL creates outside PGData must be mapped.
	TablespaceDir string
	// FetchProgram is the clinicctl binary restore_command runs; empty
	// means this program.
	FetchProgram string
	// Owner, when >= 0, becomes the owner of the restored files (a restore
	// run as root for a server that runs as another user).
	OwnerUID, OwnerGID int
	Progress           func(done, total int64)
	// Standby makes a hot standby instead of a restore: it never ends
	// recovery, replays WAL as it reaches the repository and answers
	// read-only queries meanwhile. The target must be the latest.
	Standby bool
}

// Result says what was restored.
type Result struct {
	Backup *archive.Backup
	Window archive.Window
	Needed int64 // bytes the data directory takes
	// Tablespaces says where each tablespace went.
	Tablespaces []Placement
}

// Run restores a backup into opt.PGData and configures recovery to the
// target. The result starts with a plain pg_ctl start.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	res, err := plan(opt)
	if err != nil {
		return nil, err
	}
	if err := extract(opt, res); err != nil {
		return nil, err
	}
	if err := prepareCreated(opt.PGData, res.Tablespaces); err != nil {
		return nil, err
	}
	if err := writeRecoveryConf(opt, newGuard(res.Backup, res.Window, opt.Target, res.Tablespaces).Flags()); err != nil {
		return nil, err
	}
	if opt.OwnerUID >= 0 {
		if err := chownTree(opt, res.Tablespaces); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// check refuses options a restore cannot honour, and finds the program
// restore_command runs when none is given.
func (opt *Options) check() error {
	if opt.Standby && !opt.Target.Latest() {
		return fmt.Errorf("restore: a standby follows the latest WAL; it takes no target (%s)", opt.Target)
	}
	if opt.FetchProgram == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		opt.FetchProgram = exe
	}
	for _, p := range []string{opt.FetchProgram, opt.IdentityFile, opt.Repo.Dir} {
		if strings.ContainsAny(p, `'"\`+"\n") {
			return fmt.Errorf("restore: path %q contains quotes; move it to a plain path", p)
		}
	}
	return nil
}

// plan chooses the backup for the target, places its tablespaces and
// makes sure the data directory's file system has room.
func plan(opt Options) (*Result, error) {
	sum, err := opt.Repo.Summarize()
	if err != nil {
		return nil, err
	}
	b, w, err := Choose(sum, opt.Target)
	if err != nil {
		return nil, err
	}
	res := &Result{Backup: b, Window: w}
	created, err := scanTablespaceCreates(opt.Repo, opt.Identities, b, w, opt.Target)
	if err != nil {
		return nil, err
	}
	if res.Tablespaces, err = place(opt, b, created); err != nil {
		return nil, err
	}
	if res.Needed, err = dataSize(opt.Repo, b, opt.Identities); err != nil {
		return nil, err
	}
	if err := checkSpace(opt.PGData, spaceFor(opt.Repo, b, res.Needed)); err != nil {
		return nil, err
	}
	return res, nil
}

// spaceFor is the room a restore of backup b, whose data files add up to
// data bytes, takes: the data, a second copy while an incremental's chain
// is rebuilt in a staging directory beside pgdata, and a few WAL segments.
func spaceFor(repo *archive.Repo, b *archive.Backup, data int64) int64 {
	if b.Kind == archive.KindIncremental {
		data *= 2
	}
	return data + int64(4*repo.Info.SegmentSize)
}

// SpaceNeeded is the room a restore to target takes (what Run checks
// before it writes anything), for a caller choosing where to restore.
func SpaceNeeded(repo *archive.Repo, ids []age.Identity, target Target) (int64, error) {
	sum, err := repo.Summarize()
	if err != nil {
		return 0, err
	}
	b, _, err := Choose(sum, target)
	if err != nil {
		return 0, err
	}
	data, err := dataSize(repo, b, ids)
	if err != nil {
		return 0, err
	}
	return spaceFor(repo, b, data), nil
}

// extract unpacks the chosen backup into the data directory and the
// tablespaces' places.
func extract(opt Options, res *Result) error {
	var stored int64
	for _, f := range res.Backup.Files {
		stored += f.Size
	}
	xopt := archive.ExtractOptions{Identities: opt.Identities, Tablespaces: map[uint32]string{}}
	for _, p := range res.Tablespaces {
		if p.Record == 0 {
			xopt.Tablespaces[p.OID] = p.Dir
		}
	}
	if opt.Progress != nil {
		xopt.Progress = func(done int64) { opt.Progress(done, stored) }
	}
	if err := opt.Repo.Extract(res.Backup, opt.PGData, xopt); err != nil {
		return err
	}
	if res.Backup.Kind == archive.KindIncremental {
		return checkRebuilt(opt.Repo, res.Backup, opt.PGData, opt.Identities)
	}
	return nil
}

// checkRebuilt checks a data directory rebuilt from an incremental
// backup's chain against the backup's manifest, every file's size and
// checksum, before PostgreSQL is started on it.
func checkRebuilt(repo *archive.Repo, b *archive.Backup, pgdata string, ids []age.Identity) error {
	m, err := repo.Manifest(b, ids)
	if err != nil {
		return err
	}
	if bad := archive.CheckTree(pgdata, m); len(bad) > 0 {
		return fmt.Errorf("restore: backup %s rebuilt from its chain differs from its manifest in %d files (first: %s); restore an older backup and keep the repository for investigation", b.ID, len(bad), bad[0])
	}
	return nil
}

// dataSize adds up the files of the backup's manifest.
func dataSize(repo *archive.Repo, b *archive.Backup, ids []age.Identity) (int64, error) {
	m, err := repo.Manifest(b, ids)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n, nil
}

// checkSpace makes sure the file system that will hold dir has room.
func checkSpace(dir string, need int64) error {
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(probe, &st); err != nil {
		return fmt.Errorf("restore: free space of %s: %w", probe, err)
	}
	if free := int64(st.Bavail) * st.Bsize; free < need {
		return fmt.Errorf("restore: %s needs %.1f GB free; %s has %.1f GB; free space or restore elsewhere",
			dir, float64(need)/1e9, probe, float64(free)/1e9)
	}
	return nil
}

// writeRecoveryConf sets restore_command and the target, and asks for
// recovery with recovery.signal.
func writeRecoveryConf(opt Options, guard string) error {
	if opt.Standby {
		return writeStandbyConf(opt, guard)
	}
	lines := []string{
		"",
		"# Added by clinicctl restore at " + time.Now().UTC().Format(time.RFC3339) + " (target: " + opt.Target.String() + ")",
		// A segment the prefetcher decrypted ahead is taken with a rename;
		// anything else goes through wal-fetch (prefetch.go).
		fmt.Sprintf(`restore_command = 'mv -f %s/%%f "%%p" 2>/dev/null || "%s" wal-fetch --repo "%s" --identity "%s"%s --prefetch %s%s %%f "%%p"'`,
			PrefetchDir, opt.FetchProgram, opt.Repo.Dir, opt.IdentityFile, boxKeyArg(opt.Repo), PrefetchDir, guard),
		// Renamed first, so that a prefetcher still writing cannot refill it.
		"recovery_end_command = 'mv -f " + PrefetchDir + " " + PrefetchDir + ".done 2>/dev/null; rm -rf " + PrefetchDir + ".done'",
		"recovery_target_timeline = 'latest'",
		// A backup taken from a standby carries its upstream connection.
		"primary_conninfo = ''", "primary_slot_name = ''",
	}
	t := opt.Target
	switch {
	case !t.Time.IsZero():
		lines = append(lines, "recovery_target_time = '"+t.Time.UTC().Truncate(time.Microsecond).Format("2006-01-02 15:04:05.999999")+"+00'",
			"recovery_target_inclusive = on")
	case t.LSN != 0:
		lines = append(lines, "recovery_target_lsn = '"+t.LSN.String()+"'", "recovery_target_inclusive = on")
	case t.Name != "":
		lines = append(lines, "recovery_target_name = '"+strings.ReplaceAll(t.Name, "'", "''")+"'")
	}
	if !t.Latest() {
		lines = append(lines, "recovery_target_action = 'promote'")
	}
	if err := appendConf(opt.PGData, lines); err != nil {
		return err
	}
	// A backup from a standby carries standby.signal: this is a restore,
	// which must end and promote, not wait for more WAL forever.
	if err := os.Remove(filepath.Join(opt.PGData, "standby.signal")); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(filepath.Join(opt.PGData, "recovery.signal"), nil, 0o600)
}

// writeStandbyConf sets up a hot standby fed from the repository alone.
// restore_command turns every failure into "not there yet" (exit 1): the
// standby then retries the same segment every wal_retrieve_retry_interval,
// where a restore would rather stop than end early. A damaged segment
// thus holds replay back, which the standby's status shows as lag, instead
// of shutting the standby down.
func writeStandbyConf(opt Options, guard string) error {
	lines := []string{
		"",
		"# Added by clinicbox at " + time.Now().UTC().Format(time.RFC3339) + ": a hot standby replaying WAL as it reaches the repository",
		fmt.Sprintf(`restore_command = '"%s" wal-fetch --repo "%s" --identity "%s"%s%s %%f "%%p" || exit 1'`,
			opt.FetchProgram, opt.Repo.Dir, opt.IdentityFile, boxKeyArg(opt.Repo), guard),
		"recovery_target_timeline = 'latest'", "hot_standby = on",
		// How soon a segment still being filled is asked for again.
		"wal_retrieve_retry_interval = '1s'",
		"primary_conninfo = ''", "primary_slot_name = ''",
	}
	if err := appendConf(opt.PGData, lines); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(opt.PGData, "recovery.signal")); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(filepath.Join(opt.PGData, "standby.signal"), nil, 0o600)
}

func appendConf(pgdata string, lines []string) error {
	f, err := os.OpenFile(filepath.Join(pgdata, "postgresql.auto.conf"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// chownTree gives the data directory and every tablespace directory outside
// it to the server's user.
func chownTree(opt Options, ps []Placement) error {
	roots := []string{opt.PGData}
	for _, p := range ps {
		if !inside(opt.PGData, p.Dir) {
			roots = append(roots, p.Dir)
		}
	}
	for _, root := range roots {
		err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, opt.OwnerUID, opt.OwnerGID)
		})
		if err != nil {
			return fmt.Errorf("restore: chown: %w", err)
		}
	}
	return nil
}

// boxKeyArg passes wal-fetch the key the restore checks the repository
// against, so every segment recovery replays is checked against it too.
func boxKeyArg(r *archive.Repo) string {
	if k := r.TrustedKey(); k != "" {
		return ` --box-key "` + k + `"`
	}
	return ""
}
