package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/jackc/pglogrepl"
)

const slot = "clinicbox_drive"

// box is clinicctl streaming and backing up one repository.
type box struct {
	t      *testing.T
	c      *pgtest.Cluster
	dir    string
	k      key
	stream *Process // nil while no streamer runs
	// stint is where the drive's present stint in the box began: a drive
	// that was away holds no WAL from while it was (the drive in the box
	// then did); a gap that starts before it is that. Zero: every gap is
	// a loss.
	stint postgres.LSN
}

func (b *box) args(cmd string, extra ...string) []string {
	switch cmd {
	case "stream":
		return append([]string{"stream", "--db", b.c.URL(), "--repo", b.dir, "--slot", slot, "--recipient", b.k.recipient}, extra...)
	case "backup":
		return append([]string{"backup", "--db", b.c.URL(), "--repo", b.dir, "--recipient", b.k.recipient}, extra...)
	}
	return append([]string{cmd, "--repo", b.dir, "--identity", b.k.file}, extra...)
}

func (b *box) start(cmd string) *Process {
	b.t.Helper()
	p, err := Start(clinicctl, b.args(cmd)...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { p.Kill() })
	return p
}

// flushed is where the repository's stored WAL ends, as its state says.
func (b *box) flushed() postgres.LSN {
	r, err := archive.OpenFirstUse(b.dir)
	if err != nil {
		return 0
	}
	st, _ := r.WALState()
	return st.Flushed
}

// startStream starts the streamer and waits until it stores WAL.
func (b *box) startStream() {
	b.t.Helper()
	before := b.flushed()
	b.stream = b.start("stream")
	waitUntil(b.t, "the streamer to store WAL", 2*time.Minute, func() bool {
		select {
		case <-b.stream.Done():
			b.t.Fatalf("stream ended: %v\n%s", b.stream.Err(), b.stream.Output())
		default:
		}
		return b.flushed() > before
	}, b.stream.Progress)
}

// slotFlushed is the position the streamer last reported flushed to the
// server (a physical slot's restart_lsn follows it).
func slotFlushed(t *testing.T, c *pgtest.Cluster, name string) postgres.LSN {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s *string
	if err := conn.QueryRow(ctx, "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&s); err != nil || s == nil {
		t.Fatalf("slot %s: %v", name, err)
	}
	l, err := pglogrepl.ParseLSN(*s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkAfterKill is what must hold after any kill: the repository
// verifies, has no WAL gap, and every backup it lists is complete and
// verifies (so none is listed good that is not).
func (b *box) checkAfterKill(t *testing.T) {
	t.Helper()
	rep := verifyRepo(t, b.dir, b.k)
	for _, p := range rep.Problems {
		t.Errorf("verify after kill: %s", p)
	}
	for _, n := range rep.Notes {
		if m := gapNote.FindStringSubmatch(n); m != nil && segmentLSN(m[1]) >= b.stint {
			t.Errorf("WAL gap after kill: %s", n)
		}
	}
	ok := map[string]bool{}
	for _, br := range rep.Backups {
		ok[br.ID] = br.OK
		if !br.OK {
			t.Errorf("backup %s is listed but does not verify: %v", br.ID, br.Problems)
		}
	}
	repo, err := archive.OpenFirstUse(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	done, _, err := repo.Backups()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range done {
		if d.Good() && !ok[d.ID] {
			t.Errorf("backup %s is marked good but does not verify", d.ID)
		}
	}
}

// gapNote is the verifier's note about missing WAL, with the segment
// the gap starts at.
var gapNote = regexp.MustCompile(`no WAL from ([0-9A-F]{24})`)

// segmentLSN is where a WAL segment, named by its file name, starts
// (16 MiB segments, as the test clusters have).
func segmentLSN(name string) postgres.LSN {
	log, _ := strconv.ParseUint(name[8:16], 16, 32)
	seg, _ := strconv.ParseUint(name[16:24], 16, 32)
	return postgres.LSN(log<<32 | seg<<24)
}

// SIGKILL at random moments of clinicctl stream, backup and verify under a
// running workload; after the last kill (always of the streamer) a restore
// to latest holds every commit the streamer had reported flushed.
func TestSIGKILL(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.ClinicInit(ctx, 2000); err != nil {
		t.Fatal(err)
	}
	wctx, stopClinic := context.WithCancel(ctx)
	defer stopClinic()
	go c.ClinicWorkload(wctx, 20, 2000)
	led := startLedger(t, c, 500)
	b := &box{t: t, c: c, dir: filepath.Join(testenv.SharedDir(t), "repo"), k: newKey(t)}
	b.startStream()
	if p := b.start("backup"); p.Err() != nil {
		t.Fatalf("first backup: %v\n%s", p.Err(), p.Output())
	}
	n := rounds(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("%d rounds, seed %d", n, seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	delay := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max))) }
	kinds := []string{"stream", "backup", "backup+stream", "verify"}
	for r := range n {
		kind := kinds[r%len(kinds)] // every kind in the 5 rounds of CI; the delays are random
		if r == n-1 {
			kind = "stream" // the restore below checks what the last kill left
		}
		if b.stream == nil {
			b.startStream()
		}
		t.Run(fmt.Sprintf("round%03d-%s", r, kind), func(t *testing.T) {
			b.killRound(t, kind, delay)
			b.checkAfterKill(t)
		})
	}
	b.restoreAfterLastKill(t, led, stopClinic, "restore to latest after the last SIGKILL")
	t.Run("altered-while-offsite", b.alterEveryKind)
	t.Run("forged-backup", b.forgeBackups)
}

// restoreAfterLastKill stops the workloads and checks, in a subtest, that
// a restore to latest holds every commit reported flushed before the last
// kill; it returns that position: the larger of the repository's recorded
// flush and the drive slot's restart_lsn.
func (b *box) restoreAfterLastKill(t *testing.T, led *ledger, stopClinic func(), fault string) postgres.LSN {
	t.Helper()
	claimed := max(b.flushed(), slotFlushed(t, b.c, slot))
	stopClinic()
	led.stop()
	if led.err != nil {
		t.Fatal(led.err)
	}
	t.Run("restore-after-last-kill", func(t *testing.T) {
		b.restoreHolds(t, led, claimed, fault)
	})
	return claimed
}

// killRound runs one round: which processes die and when.
func (b *box) killRound(t *testing.T, kind string, delay func(time.Duration) time.Duration) {
	kill := func(p *Process, fault, outcome string, d time.Duration) {
		if !p.KillAfter(d) {
			t.Logf("%s ended before the kill at %s", p.Name, d)
			return
		}
		tr := newTry(t, fault)
		tr.Outcome = outcome
		t.Logf("killed %s after %s", p.Name, d)
	}
	const streamed = "restarted; repository verifies, no WAL gap, streaming resumed from the slot"
	switch kind {
	case "stream":
		kill(b.stream, "SIGKILL of clinicctl stream while it stores WAL", streamed, delay(3*time.Second))
		b.stream = nil
	case "backup", "backup+stream":
		p := b.start("backup")
		ds, dp := delay(3*time.Second), delay(1800*time.Millisecond) // a backup here takes about 2 s
		start := time.Now()
		if kind == "backup+stream" && ds < dp {
			kill(b.stream, "SIGKILL of clinicctl stream while a backup waits for its WAL", streamed, ds)
			b.stream = nil
		}
		kill(p, "SIGKILL of clinicctl backup during a base backup",
			"interrupted backup left as incomplete (not listed, removed by the next backup); every listed backup verifies", max(0, dp-time.Since(start)))
		if kind == "backup+stream" && b.stream != nil {
			kill(b.stream, "SIGKILL of clinicctl stream while a backup waits for its WAL", streamed, max(0, ds-time.Since(start)))
			b.stream = nil
		}
	case "verify":
		p := b.start("verify")
		kill(p, "SIGKILL of clinicctl verify while it records results",
			"no backup marked good by the interrupted run unless it verifies", delay(1500*time.Millisecond))
	}
}

// restoreHolds drill-restores to latest and checks that every ledger
// commit at or before the claimed position is there.
func (b *box) restoreHolds(t *testing.T, led *ledger, claimed postgres.LSN, fault string) {
	tr := newTry(t, fault)
	want := led.committedBy(claimed)
	if want == 0 {
		t.Fatalf("no ledger commit at or before %s; the workload did not run", claimed)
	}
	repo, err := archive.OpenFirstUse(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	countSQL := fmt.Sprintf("SELECT count(*) FROM %s WHERE seq <= %d;", ledgerTable, want)
	checks := &restore.Checks{Steps: []restore.CheckStep{{Database: "postgres", SQL: countSQL}}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := restore.Drill(ctx, restore.DrillOptions{Repo: repo, Identities: b.k.ids, IdentityFile: b.k.file, Signer: testSigner,
		FetchProgram: clinicctl, Checks: checks})
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if !rep.OK {
		t.Fatalf("drill failed: %s %+v", rep.Failure, rep.Checks)
	}
	got := -1
	for _, c := range rep.Checks {
		if strings.Contains(c.Name, ledgerTable) {
			got, _ = strconv.Atoi(c.Detail)
		}
	}
	if got != want {
		tr.Lost = fmt.Sprintf("%d of %d commits reported flushed", want-got, want)
		t.Errorf("restored %d of the %d commits at or before %s; want all", got, want, claimed)
	}
	tr.Outcome = fmt.Sprintf("restore holds every commit up to the position reported flushed before the kill (%d of %d commits in all, RPO %.1fs)",
		want, led.commits(), rep.RPO)
	t.Logf("restored %d commits up to %s from backup %s; %d committed in all", got, claimed, rep.Backup, led.commits())
}
