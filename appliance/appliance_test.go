package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/drive/drivetest"
	"github.com/clinicbox/clinicbox/appliance/hardware"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/panel"
	"github.com/clinicbox/clinicbox/drivers/panel/paneltest"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
	"github.com/jackc/pglogrepl"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if clinicctlOnce.path != "" {
		os.RemoveAll(filepath.Dir(clinicctlOnce.path))
	}
	os.Exit(code)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// rig is a box with simulated drives against a real PostgreSQL.
type rig struct {
	t      *testing.T
	a      *Appliance
	sim    *drivetest.Drives
	clock  *clock
	db     *pgtest.Cluster
	button chan Button
	cancel context.CancelFunc
	done   chan error
	loc    *time.Location
	// gen maps generation names to simulated drive names.
	gen map[string]string
}

func settingsJSON(url string) string {
	return fmt.Sprintf(`{
  "database": {"url": %q},
  "rotation": {"time_zone": "America/Chicago", "swap_at": "08:00"},
  "nightly_at": "21:00",
  "quiet_hours": {"start": "20:00", "end": "07:00"}
}`, url)
}

func newRig(t *testing.T, start time.Time, opts ...func(*Config)) *rig {
	t.Helper()
	db := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := db.ClinicInit(ctx, 40); err != nil {
		t.Fatal(err)
	}
	set, err := LoadSettings(strings.NewReader(settingsJSON(db.URL())))
	if err != nil {
		t.Fatal(err)
	}
	// The restore drill's server runs as an unprivileged user and reads
	// the drives through wal-fetch: the tree must be traversable.
	top, err := os.MkdirTemp("", "clinicbox-appliance-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(top, 0o755)
	t.Cleanup(func() { os.RemoveAll(top) })
	sim, err := drivetest.New(filepath.Join(top, "drives"), "blue", "green", "red", "orange")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, sim: sim, clock: &clock{t: start}, db: db, button: make(chan Button), gen: map[string]string{}}
	r.loc, _ = set.Location()
	cfg := Config{Settings: set, StateDir: filepath.Join(top, "state"), Drives: sim, Button: r.button,
		Now: r.clock.Now, Tick: time.Hour, Hostname: "clinicbox-test"}
	for _, o := range opts {
		o(&cfg)
	}
	r.a, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.start()
	return r
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.a.Run(ctx) }()
	r.t.Cleanup(r.stop)
}

func (r *rig) stop() {
	if r.cancel != nil {
		r.cancel()
		if err := <-r.done; err != nil {
			r.t.Errorf("Run: %v", err)
		}
		r.cancel = nil
	}
}

// wait blocks until the status satisfies ok; what names the awaited state.
func (r *rig) wait(what string, ok func(status.Status) bool) status.Status {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience(r.t))
	defer cancel()
	st, err := r.a.WaitFor(ctx, ok)
	if err != nil {
		b, _ := json.MarshalIndent(st, "", "  ")
		r.t.Fatalf("waiting for %s: %v\nstatus: %s", what, err, b)
	}
	return st
}

// caughtUp waits until the drive holds all WAL the server has written.
func (r *rig) caughtUp() {
	r.t.Helper()
	target, err := r.db.CurrentLSN(context.Background(), false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.wait("WAL on the drive up to "+target.String(), func(st status.Status) bool {
		var l pglogrepl.LSN
		return st.WAL.Local.FlushedLSN != "" && l.Scan(st.WAL.Local.FlushedLSN) == nil && l >= target
	})
}

func (r *rig) at(day time.Time, hour, minute int) {
	r.clock.Set(time.Date(day.Year(), day.Month(), day.Day(), hour, minute, 0, 0, r.loc))
	r.a.Poke()
}

func hasCondition(st status.Status, name string) bool {
	for _, c := range st.Conditions {
		if c.Name == name {
			return true
		}
	}
	return false
}

// verifiedBackups counts the verified backups of a generation.
func verifiedBackups(st status.Status, gen string) int {
	n := 0
	for _, b := range st.Backups {
		if b.Generation == gen && b.Verified == "ok" {
			n++
		}
	}
	return n
}

// plugAndBackUp plugs a drive and waits until its backup is verified and
// WAL streams onto it.
func (r *rig) plugAndBackUp(name, gen string) {
	r.t.Helper()
	before := verifiedBackups(r.a.Status(), gen)
	if err := r.sim.Plug(name); err != nil {
		r.t.Fatal(err)
	}
	r.wait(gen+" backed up and streaming", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Activity == "streaming" && verifiedBackups(st, gen) > before
	})
}

// swap ejects the drive in the box with the button and takes it out.
func (r *rig) swapOut(name string) {
	r.t.Helper()
	st := r.wait("swap due", func(st status.Status) bool { return len(st.Conditions) > 0 && st.Conditions[0].Name == "swap due" })
	if st.Panel.Amber != "steady" || st.Panel.Green != "off" || st.Panel.Buzzer != "one short beep" {
		r.t.Errorf("panel at swap due: %+v; want amber steady and one short beep", st.Panel)
	}
	r.button <- Ack
	r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	if err := r.sim.Unplug(name); err != nil {
		r.t.Fatal(err)
	}
	r.wait("drive out", func(st status.Status) bool { return st.InBox == nil })
}

func (r *rig) enroll(name string) string {
	r.t.Helper()
	if err := r.sim.Plug(name); err != nil {
		r.t.Fatal(err)
	}
	r.wait("unknown drive offered for enrollment", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	})
	if err := r.a.Do(context.Background(), ActEnroll, "", "test"); err != nil {
		r.t.Fatal(err)
	}
	st := r.wait("enrolled drive backed up", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Activity == "streaming" && st.InBox.Generation != "" && verifiedBackups(st, st.InBox.Generation) > 0
	})
	r.gen[st.InBox.Generation] = name
	return st.InBox.Generation
}

func (r *rig) workload(visits int) {
	r.t.Helper()
	ctx := context.Background()
	conn, err := r.db.Connect(ctx, "postgres")
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rng := rand.New(rand.NewPCG(1, uint64(visits)))
	for range visits {
		if err := pgtest.ClinicVisit(ctx, conn, rng, 40); err != nil {
			r.t.Fatal(err)
		}
	}
}

// A week of correct swaps: three drives enrolled on Monday, then every
// evening a nightly backup, every morning swap due, the button, the next
// drive in. Every backup verifies; every drive's repository verifies at
// the end and the latest one restores with every committed visit.
func TestWeekOfCorrectSwaps(t *testing.T) {
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	// The real panel with recording pins: the status mirrors what it shows.
	green, amber := paneltest.NewPin(), paneltest.NewPin()
	p := panel.New(panel.Config{Green: green, Amber: amber, Red: paneltest.NewPin(), Buzzer: paneltest.NewPin()})
	pctx, stopPanel := context.WithCancel(context.Background())
	defer stopPanel()
	go p.Run(pctx)
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), func(c *Config) { c.Panel = hardware.StatusPanel{P: p} })
	r.at(monday, 7, 0)
	for _, name := range []string{"blue", "green"} {
		r.enroll(name)
		r.workload(5)
		if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
			t.Fatal(err)
		}
		r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
		r.sim.Unplug(name)
		r.wait("drive out", func(st status.Status) bool { return st.InBox == nil })
	}
	inBox := r.enroll("red")
	inName := r.gen[inBox]
	for d := 1; d <= 4; d++ {
		evening := monday.AddDate(0, 0, d-1)
		r.workload(10)
		before := verifiedBackups(r.a.Status(), inBox)
		r.at(evening, 21, 30)
		r.wait("nightly backup of "+inBox, func(st status.Status) bool {
			return verifiedBackups(st, inBox) > before && st.InBox.Activity == "streaming"
		})
		r.at(evening.AddDate(0, 0, 1), 8, 30)
		r.swapOut(inName)
		st := r.a.Status()
		if st.Expected == "" {
			t.Fatalf("day %d: no drive expected next", d)
		}
		inBox = st.Expected
		inName = r.gen[inBox]
		if inName == "" {
			t.Fatalf("day %d: expected generation %s is not one of ours %v", d, inBox, r.gen)
		}
		r.plugAndBackUp(inName, inBox)
		if st := r.a.Status(); st.Severity >= status.Attention || st.Panel.Green != "steady" {
			t.Fatalf("day %d after the swap: %s (%v), panel %+v", d, st.Headline, st.Conditions, st.Panel)
		}
	}
	r.workload(10)
	want := countVisits(t, r.db)
	r.caughtUp()
	r.stop()

	entries, err := r.a.Custody()
	if err != nil || rotation.Verify(entries, r.a.CustodySealer()) != nil {
		t.Fatalf("custody log: %v %v", err, rotation.Verify(entries, r.a.CustodySealer()))
	}
	removes := 0
	for _, e := range entries {
		if e.Event == string(rotation.Remove) && e.Decision == rotation.Ejected {
			removes++
		}
	}
	if removes != 6 {
		t.Errorf("custody log has %d safe removals; want 6 (2 enrollments, 4 swaps)", removes)
	}
	ids := []age.Identity{r.a.key.Identity}
	for _, name := range []string{"blue", "green", "red"} {
		repo, err := archive.OpenFirstUse(filepath.Join(r.sim.Dir, name, repoDir))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: ids})
		if err != nil || !rep.OK() {
			t.Errorf("drive %s does not verify: %v %v", name, err, rep.Problems)
		}
	}
	if _, err := os.Stat(filepath.Join(r.sim.Dir, "blue", identityFile)); err != nil {
		t.Errorf("enrolled drive has no identity file: %v", err)
	}
	for _, f := range []string{"box.key"} {
		for _, name := range []string{"blue", "green", "red"} {
			if out, _ := exec.Command("grep", "-rl", "AGE-SECRET-KEY", filepath.Join(r.sim.Dir, name)).Output(); len(out) > 0 {
				t.Errorf("a secret key (%s) is on drive %s: %s", f, name, out)
			}
		}
	}
	restoreLatest(t, filepath.Join(r.sim.Dir, inName, repoDir), r.a.key.Identity, want)
}

func mustLoc(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func countVisits(t *testing.T, c *pgtest.Cluster) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM encounters").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// restoreLatest runs a restore drill of a drive's repository to its latest
// moment and wants exactly the visits the server had committed.
// drillSigner signs the reports of drills the tests run as a PC would.
var drillSigner = signer.FromSeed(bytes.Repeat([]byte{5}, 32))

func restoreLatest(t *testing.T, repoDir string, id *age.X25519Identity, visits int64) {
	t.Helper()
	tmp := testenv.SharedDir(t)
	clinicctl := clinicctlBinary(t)
	keyFile := filepath.Join(tmp, "box.key")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo, err := archive.OpenFirstUse(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	checks, err := restore.ParseChecks(strings.NewReader(fmt.Sprintf(
		"DO $$ BEGIN IF (SELECT count(*) FROM encounters) <> %d THEN RAISE EXCEPTION 'visits lost'; END IF; END $$;\n", visits)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := restore.Drill(ctx, restore.DrillOptions{Repo: repo, Identities: []age.Identity{id}, IdentityFile: keyFile, Signer: drillSigner, Checks: checks, FetchProgram: clinicctl})
	if err != nil || !rep.OK {
		b, _ := json.MarshalIndent(rep, "", "  ")
		t.Fatalf("restore drill of %s: %v\n%s", repoDir, err, b)
	}
}

// A week of the mistakes staff make: a drive pulled without the button, the
// same drive put back, a stranger's drive. The box records each, says what
// to fix, never writes to the stranger, and the next right drive still gets
// a full backup.
func TestWeekOfMistakes(t *testing.T) {
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")))
	r.at(monday, 7, 0)
	for _, name := range []string{"blue", "green"} {
		r.enroll(name)
		if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
			t.Fatal(err)
		}
		r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
		r.sim.Unplug(name)
		r.wait("drive out", func(st status.Status) bool { return st.InBox == nil })
	}
	r.enroll("red")
	r.workload(10)

	// Tuesday morning: red is pulled without pressing the button.
	r.at(monday.AddDate(0, 0, 1), 8, 30)
	r.wait("swap due", func(st status.Status) bool { return hasCondition(st, "swap due") })
	r.sim.Unplug("red")
	st := r.wait("drive out", func(st status.Status) bool { return st.InBox == nil })
	if !strings.Contains(st.Events[0].Message+st.Events[1].Message, "without pressing the button") {
		t.Errorf("pull without eject not reported: %v", st.Events[:2])
	}

	// The same drive goes back in: a wrong drive, still backed up
	// (lenient policy), and the panel says what to fix.
	r.plugAndBackUp("red", "Grandfather")
	st = r.a.Status()
	if st.InBox.Decision != string(rotation.WrongDrive) || !hasCondition(st, string(rotation.WrongDrive)) {
		t.Errorf("same drive back in: decision %q, conditions %v; want a wrong drive", st.InBox.Decision, st.Conditions)
	}
	if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	r.sim.Unplug("red")
	r.wait("drive out", func(st status.Status) bool { return st.InBox == nil })

	// A stranger's drive: never written, offered for enrollment.
	stranger := filepath.Join(r.sim.Dir, "stranger")
	os.MkdirAll(stranger, 0o755)
	os.WriteFile(filepath.Join(stranger, "holiday.jpg"), []byte("not a backup"), 0o644)
	if err := r.sim.Plug("stranger"); err != nil {
		t.Fatal(err)
	}
	st = r.wait("unknown drive", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	})
	if st.InBox.Writable || !hasCondition(st, string(rotation.UnknownDrive)) || st.Severity != status.Attention {
		t.Errorf("stranger: writable %v, conditions %v; want not written, amber", st.InBox.Writable, st.Conditions)
	}
	if err := r.a.Do(context.Background(), ActBackup, "", "test"); err == nil {
		t.Errorf("a backup onto the stranger's drive was accepted")
	}
	if ents, _ := os.ReadDir(stranger); len(ents) != 1 {
		t.Errorf("the stranger's drive was written: %v", ents)
	}
	r.sim.Unplug("stranger")
	r.wait("drive out", func(st status.Status) bool { return st.InBox == nil })

	// The expected drive: accepted and given a full backup.
	next := r.a.Status().Expected
	r.plugAndBackUp(r.gen[next], next)
	st = r.a.Status()
	if st.InBox.Decision != string(rotation.Accepted) || st.Severity >= status.Attention {
		t.Errorf("expected drive: %q, %s %v", st.InBox.Decision, st.Headline, st.Conditions)
	}
	r.stop()
	entries, _ := r.a.Custody()
	kinds := map[rotation.Kind]int{}
	for _, e := range entries {
		kinds[e.Decision]++
	}
	for _, k := range []rotation.Kind{rotation.Pulled, rotation.WrongDrive, rotation.UnknownDrive, rotation.Enrolled} {
		if kinds[k] == 0 {
			t.Errorf("custody log lacks a %q entry: %v", k, kinds)
		}
	}
}

// The service restarted in the middle of a base backup: the interrupted
// backup is never listed as good, the next attempt succeeds, and the drive
// has no WAL gap.
func TestRestartMidBackup(t *testing.T) {
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")))
	if err := r.db.PgbenchInit(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	r.enroll("blue")
	r.workload(20)
	if err := r.a.Do(context.Background(), ActBackup, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("backing up", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "backing up" })
	r.stop() // as SIGTERM would

	repoPath := filepath.Join(r.sim.Dir, "blue", repoDir)
	repo, err := archive.OpenFirstUse(repoPath)
	if err != nil {
		t.Fatal(err)
	}
	done, _, err := repo.Backups()
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 {
		t.Fatalf("after the interrupted backup the drive lists %d backups; want only the first", len(done))
	}

	// Restart: the drive is still in; the box picks it up again.
	a2, err := New(r.a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.a = a2
	r.start()
	r.wait("drive back in service", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "streaming" })
	before := verifiedBackups(r.a.Status(), "Son")
	if err := r.a.Do(context.Background(), ActBackup, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("second attempt verified", func(st status.Status) bool {
		return verifiedBackups(st, "Son") > before && st.InBox.Activity == "streaming"
	})
	r.workload(10)
	r.stop()
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: []age.Identity{r.a.key.Identity}})
	if err != nil || !rep.OK() {
		t.Fatalf("drive does not verify after the restart: %v %v", err, rep.Problems)
	}
	for _, n := range rep.Notes {
		if strings.Contains(n, "no WAL from") {
			t.Errorf("WAL gap on the drive: %s", n)
		}
	}
}

// recordingNotifier keeps the conditions the appliance handed to alerts.
type recordingNotifier struct {
	mu   sync.Mutex
	seen map[string]status.Severity
}

func (n *recordingNotifier) Update(now time.Time, st status.Status) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range st.Conditions {
		n.seen[c.Name] = c.Severity
	}
}

// With no drive in the box the server keeps WAL in the slot; once it keeps
// more than the warning level, the box says so (amber), and the alerts see
// it.
func TestSlotRetentionWarnsWithNoDrive(t *testing.T) {
	db := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := db.PgbenchInit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	set, err := LoadSettings(strings.NewReader(`{"database": {"url": "` + db.URL() + `"}, "rotation": {"time_zone": "UTC", "swap_at": "08:00"}, "slot_warn_bytes": 4194304}`))
	if err != nil {
		t.Fatal(err)
	}
	top, _ := os.MkdirTemp("", "clinicbox-appliance-test-")
	t.Cleanup(func() { os.RemoveAll(top) })
	sim, _ := drivetest.New(filepath.Join(top, "drives"), "blue")
	n := &recordingNotifier{seen: map[string]status.Severity{}}
	r := &rig{t: t, sim: sim, clock: &clock{t: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)}, db: db, button: make(chan Button), gen: map[string]string{}}
	if r.a, err = New(Config{Settings: set, StateDir: filepath.Join(top, "state"), Drives: sim, Notifier: n, Now: r.clock.Now, Tick: time.Hour}); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.enroll("blue")
	// "streaming" is said as the stream starts; WAL on the drive means it
	// has found or created the slot.
	r.caughtUp()
	if err := r.a.Do(ctx, ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	sim.Unplug("blue")
	r.wait("no drive", func(st status.Status) bool { return st.InBox == nil })
	if err := db.Pgbench(ctx, "-t", "3000"); err != nil {
		t.Fatal(err)
	}
	r.a.Poke()
	st := r.wait("slot retention", func(st status.Status) bool { return hasCondition(st, "slot retention") })
	if len(st.Slots) != 1 || st.Slots[0].RetainedBytes <= 4<<20 || st.Slots[0].Active {
		t.Errorf("slots: %+v; want one inactive slot holding more than 4 MiB", st.Slots)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen["slot retention"] != status.Attention || n.seen[string(rotation.NoDrive)] != status.Attention {
		t.Errorf("alerts saw %v; want slot retention and no drive, both attention", n.seen)
	}
}

// A USB drive's eject ends with the kernel deleting the disk, so the box
// can hear that it left before the eject itself reports: that is still a
// safe eject, in the events and in the custody log.
func TestEjectThatRemovesTheDrive(t *testing.T) {
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC))
	r.sim.EjectRemoves = true
	r.enroll("blue")
	if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	st := r.wait("the drive gone", func(st status.Status) bool { return st.InBox == nil })
	var said []string
	for _, e := range st.Events {
		said = append(said, e.Message)
		if strings.Contains(e.Message, "without pressing the button") {
			t.Errorf("event %q for a drive that was ejected", e.Message)
		}
	}
	if !slices.ContainsFunc(said, func(m string) bool { return strings.Contains(m, "is safe to remove") }) {
		t.Errorf("events %q; want one saying the drive is safe to remove", said)
	}
	if len(st.Swap.Recent) == 0 || st.Swap.Recent[0].Event != "remove" || st.Swap.Recent[0].Decision != "ejected" {
		t.Errorf("custody log, newest first: %+v; want a remove recorded as ejected", st.Swap.Recent)
	}
	checkHeadOnDrive(t, r, "blue")
}

// checkHeadOnDrive checks the logs' heads an eject left on a drive: signed
// by the box, and the custody log up to then (the remove follows it).
func checkHeadOnDrive(t *testing.T, r *rig, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.sim.Dir, name, rotation.HeadFile))
	if err != nil {
		t.Fatalf("head file on the drive: %v", err)
	}
	var hs chain.Heads
	if err := json.Unmarshal(b, &hs); err != nil || len(hs.Heads) == 0 || hs.Heads[0].Log != "custody" {
		t.Fatalf("head file %s: got %v; want the custody log's head first", b, err)
	}
	entries, err := r.a.Custody()
	if err != nil {
		t.Fatal(err)
	}
	pub := r.a.key.Signer.Public()
	if ps := rotation.Check(entries, chain.Keys{Public: pub}, hs.Heads); len(ps) != 0 {
		t.Errorf("custody log against the drive's head: got %v; want no problems", ps)
	}
	if ps := rotation.Check(entries[:len(entries)-2], chain.Keys{Public: pub}, hs.Heads); len(ps) != 1 || ps[0].Kind != chain.Truncated {
		t.Errorf("custody log cut by two entries against the drive's head: got %v; want it reported truncated", ps)
	}
}

// Someone drops the box's slot while the box is off and the server recycles
// the WAL: on restart the box says the WAL in between is lost and takes a
// new base backup at once, so point-in-time recovery works again from it.
func TestDroppedSlotStartsNewBackup(t *testing.T) {
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC))
	r.enroll("blue")
	r.workload(10)
	r.caughtUp()
	r.stop()
	r.db.MustExec(t, "SELECT pg_drop_replication_slot('"+DefaultSlot+"')")
	for range 2 {
		r.workload(20)
		r.db.MustExec(t, "SELECT pg_switch_wal()", "CHECKPOINT")
	}
	before := verifiedBackups(r.a.Status(), "Son")
	a2, err := New(r.a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.a = a2
	r.start()
	st := r.wait("a new backup after the gap", func(st status.Status) bool {
		return verifiedBackups(st, "Son") > before && st.InBox != nil && st.InBox.Activity == "streaming"
	})
	said := ""
	for _, e := range st.Events {
		if strings.Contains(e.Message, "created again") {
			said = e.Message
		}
	}
	// The backup may be one the restart began anyway; either way a new
	// base backup after the gap verifies.
	if !strings.Contains(said, "is lost") || !(strings.Contains(said, "Taking a new base backup") || strings.Contains(said, "starts a new recoverable window")) {
		t.Errorf("events %+v; want one saying the WAL is lost and that a new base backup starts a new window", st.Events)
	}
	r.workload(5)
	r.caughtUp()
	r.stop()
	restoreLatest(t, filepath.Join(r.sim.Dir, "blue", repoDir), r.a.key.Identity, countVisits(t, r.db))
}

// A drive ejected before its swap is due is asked back once it is out, so
// the panel must not tell staff to take it offsite while it is safe to
// remove: both say to put it back.
func TestEarlyEjectAsksForTheDriveBack(t *testing.T) {
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC))
	gen := r.enroll("blue")
	if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	st := r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	said := conditionSaying(st, "is safe to remove")
	if !strings.Contains(said, "swap is not due until") || !strings.Contains(said, "put it back in") || strings.Contains(said, "offsite") {
		t.Errorf("while %s is safe to remove before its swap is due, the panel says %q; want it to say the swap is not due and to put it back in", gen, said)
	}
	if err := r.sim.Unplug("blue"); err != nil {
		t.Fatal(err)
	}
	st = r.wait("drive out", func(st status.Status) bool { return st.InBox == nil })
	if said := conditionSaying(st, "There is no drive in the box"); !strings.Contains(said, "Put "+gen+" back in") {
		t.Errorf("with %s out early, the panel says %q; want it asked back", gen, said)
	}
}

// conditionSaying returns the message of st's first condition containing
// part, or "".
func conditionSaying(st status.Status, part string) string {
	for _, c := range st.Conditions {
		if strings.Contains(c.Message, part) {
			return c.Message
		}
	}
	return ""
}
