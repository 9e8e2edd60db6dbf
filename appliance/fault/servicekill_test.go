package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/jackc/pglogrepl"
)

// What a SIGKILL of the service can land in, and the rows they make.
const (
	inBackup    = "SIGKILL of cmd/clinicbox during a base backup"
	inVerify    = "SIGKILL of cmd/clinicbox while it verifies a new backup"
	inUpload    = "SIGKILL of cmd/clinicbox during an upload of a base backup to the vault"
	inRetention = "SIGKILL of cmd/clinicbox during retention (within milliseconds of it deleting an old backup to make room)"
	inStream    = "SIGKILL of cmd/clinicbox while it streams WAL"
	inOther     = "SIGKILL of cmd/clinicbox while it starts or identifies the drive"
)

// retentionLog is what the service logs for each backup retention deletes.
const retentionLog = "retention: backup deleted"

// SIGKILL of the appliance service itself, cmd/clinicbox, run as a child
// against a real loop-device ext4 drive, real PostgreSQL under a workload
// and a vault on an in-process tailnet, at random moments of a base
// backup, its verification, retention, an upload to the vault and WAL
// streaming. After every kill: the drive's repository verifies with no
// WAL gap and no backup marked good that does not verify; the restarted
// service streams again. After the last kill a restore to latest holds
// every commit the service had reported flushed, and the vault verifies
// with no gap once the service has caught up.
func TestSIGKILLService(t *testing.T) {
	s := newBoxService(t, 32<<20) // skips without loop devices
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.ClinicInit(ctx, 2000); err != nil {
		t.Fatal(err)
	}
	tn := tailnettest.New(t)
	vaultDir := t.TempDir()
	serveVault(t, tn.Node(t, "vault", "tag:vault"), vaultDir)
	k := newKey(t)
	// Uploads are capped at 2 Mbit/s all day so that a kill can land in
	// one; the small drive makes retention delete old backups.
	settings := fmt.Sprintf(`{"database": {"url": %q}, "recipients": [%q], "rotation": {"time_zone": "UTC", "swap_at": "08:00"},
		"offsite": {"name": "vault", "vault_url": "http://vault:8443", "control_url": %q, "hostname": "box",
			"office_from": 0, "office_to": 24, "office_bits_per_second": 2000000}}`, c.URL(), k.recipient, tn.ControlURL)
	s.writeSettings(settings)
	wctx, stopClinic := context.WithCancel(ctx)
	defer stopClinic()
	go c.ClinicWorkload(wctx, 20, 2000)
	led := startLedger(t, c, 500)

	s.start()
	s.wait("the drive offered for enrollment", 2*time.Minute, func(st *status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	})
	s.act(appliance.ActEnroll, "")
	s.wait("the enrolled drive backed up, verified and streaming", 3*time.Minute, func(st *status.Status) bool {
		return streaming(st, 0) && verifiedOK(st) > 0
	})
	b := &box{t: t, c: c, dir: s.repo(), k: k}
	n := rounds(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("%d rounds, seed %d", n, seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	targets := []string{inBackup, inVerify, inUpload, inRetention, inStream}
	for r := range n {
		target := targets[r%len(targets)]
		if r == n-1 {
			target = inStream // the restore below checks what the last kill left
		}
		t.Run(fmt.Sprintf("round%03d", r), func(t *testing.T) {
			s.t, b.t = t, t // the helpers fail the round, not the whole test
			defer func() {
				if t.Failed() {
					t.Logf("the service's log:\n%s\nthe drive:\n%s", s.keyLines(), repoListing(b.dir))
				}
			}()
			hit := s.killIn(target, rng)
			t.Logf("aimed at %q; hit %q", target, hit)
			b.checkAfterKill(t)
			if r == n-1 {
				// Left dead for the restore; restarted for the vault.
				for _, h := range hit {
					newTry(t, h).Outcome = "the drive's repository verifies with no WAL gap and no backup marked good that does not verify; restored to latest (below), then restarted and caught up (the vault below)"
				}
				return
			}
			s.restart(b, hit)
		})
		s.t, b.t = t, t
		if t.Failed() {
			break
		}
	}
	t.Logf("retention deleted %d backups over the rounds", s.deleted)
	claimed := b.restoreAfterLastKill(t, led, stopClinic, "restore to latest after the last SIGKILL of cmd/clinicbox")
	t.Run("vault-after-the-kills", func(t *testing.T) {
		s.t = t
		s.vaultCatchesUp(claimed, vaultDir, k)
	})
}

// killIn kills the service at a random moment of the target phase and
// returns the rows the kill counts for (what it was doing just before).
func (s *boxService) killIn(target string, rng *rand.Rand) []string {
	s.t.Helper()
	delay := func(limit time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(limit))) }
	st := s.status()
	switch target {
	case inStream:
		return s.killAfter(delay(3 * time.Second))
	case inUpload:
		if st == nil || inVault(st) && !s.uploading(st) {
			s.t.Logf("the vault holds a base backup and no upload is due: killing while streaming instead")
			return s.killAfter(delay(3 * time.Second))
		}
		if !s.uploading(st) {
			s.act(appliance.ActBackup, "")
		}
		s.wait("an upload to the vault", 3*time.Minute, s.uploading)
		return s.killAfter(delay(2 * time.Second))
	}
	if target == inRetention {
		if !s.awaitRetention() {
			s.t.Logf("retention deleted nothing in 5 backups; killing during a verification instead")
			s.wait("a verification", 2*time.Minute, activity("verifying"))
			return s.killAfter(delay(400 * time.Millisecond))
		}
		d := delay(20 * time.Millisecond)
		t := time.NewTimer(d)
		defer t.Stop()
		<-t.C // the fault's timing, not a synchronization
		s.kill(d)
		return []string{inRetention}
	}
	s.act(appliance.ActBackup, "")
	if target == inBackup {
		s.wait("a base backup", time.Minute, activity("backing up"))
		return s.killAfter(delay(800 * time.Millisecond)) // a backup here takes 1-2 s
	}
	s.wait("a verification", 2*time.Minute, activity("verifying"))
	return s.killAfter(delay(400 * time.Millisecond))
}

// awaitRetention takes backups, up to 5, until retention deletes an old
// one to make room, and reports whether it did. Retention runs at the
// start of every backup, before the backup itself, and logs each backup
// it deletes as it goes; this returns within milliseconds of the first
// such line (the log is read every 20 ms), while retention may still be
// deleting. When it returns false a backup is under way.
func (s *boxService) awaitRetention() bool {
	s.t.Helper()
	for range 5 {
		before := strings.Count(s.proc.Output(), retentionLog)
		s.act(appliance.ActBackup, "")
		var deleted bool
		s.wait("retention or the backup's verification", 2*time.Minute, func(st *status.Status) bool {
			deleted = strings.Count(s.proc.Output(), retentionLog) > before
			return deleted || st.InBox != nil && st.InBox.Activity == "verifying"
		})
		if deleted {
			return true
		}
		s.wait("the backup done", 2*time.Minute, func(st *status.Status) bool { return streaming(st, 0) })
	}
	s.act(appliance.ActBackup, "")
	return false
}

func activity(a status.Activity) func(*status.Status) bool {
	return func(st *status.Status) bool { return st.InBox != nil && st.InBox.Activity == a }
}

// killAfter reads the status until d has passed, kills the service and
// says what it was doing at the last read.
func (s *boxService) killAfter(d time.Duration) []string {
	s.t.Helper()
	last := s.status()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
read:
	for {
		select {
		case <-deadline.C:
			break read
		case <-tick.C:
			if st := s.status(); st != nil {
				last = st
			}
		}
	}
	s.kill(d)
	var hit []string
	if last == nil || last.InBox == nil {
		return []string{inOther}
	}
	switch last.InBox.Activity {
	case "backing up":
		hit = append(hit, inBackup)
	case "verifying":
		hit = append(hit, inVerify)
	case "streaming":
		hit = append(hit, inStream)
	case status.Ejecting, status.SafeToRemove:
		hit = append(hit, inEject)
	default:
		hit = append(hit, inOther)
	}
	if s.uploading(last) {
		hit = append(hit, inUpload)
	}
	return hit
}

// kill sends SIGKILL to the service, d after the phase was seen.
func (s *boxService) kill(d time.Duration) {
	s.t.Helper()
	s.deleted += strings.Count(s.proc.Output(), retentionLog)
	if !s.proc.Kill() {
		s.t.Fatalf("clinicbox ended before the kill: %v\n%s", s.proc.Err(), lastLines(s.proc.Output(), 40))
	}
	s.t.Logf("killed clinicbox after %s", d)
}

// restart starts the service again and waits until it has taken the
// drive back, backed it up and streams past what was stored before the
// kill; each row hit gets its try then.
func (s *boxService) restart(b *box, hit []string) {
	s.t.Helper()
	stored := b.flushed()
	s.start()
	s.wait("streaming again after the restart", 3*time.Minute, func(st *status.Status) bool { return streaming(st, stored) })
	outcome := "restarted: the drive was mounted again, its repository verifies with no WAL gap and no backup marked good that does not verify; streaming resumed from the slot"
	for _, h := range hit {
		tr := newTry(s.t, h)
		tr.Outcome = outcome
		if h == inUpload {
			tr.Outcome += "; the upload resumed with the next verified backup (the vault verifies with no gap at the end)"
		}
	}
}

// vaultCatchesUp restarts the service after the last kill and waits until
// the vault holds a base backup and the WAL past claimed, then stops it
// cleanly and verifies the vault's copy.
func (s *boxService) vaultCatchesUp(claimed postgres.LSN, vaultDir string, k key) {
	s.t.Helper()
	tr := newTry(s.t, "the vault after the SIGKILLs of cmd/clinicbox")
	s.start()
	st := s.wait("streaming again", 3*time.Minute, func(st *status.Status) bool { return streaming(st, 0) })
	if !inVault(st) && !s.uploading(st) {
		s.act(appliance.ActBackup, "")
	}
	// At 2 Mbit/s an upload takes minutes: what the vault has written so
	// far is the progress.
	s.wait("a base backup in the vault and its WAL past "+claimed.String(), 2*time.Minute, func(st *status.Status) bool {
		if !inVault(st) {
			return false
		}
		l, err := pglogrepl.ParseLSN(st.Offsite[0].Lag.FlushedLSN)
		return err == nil && l >= claimed
	}, func() string { return fmt.Sprint(testenv.DirBytes(vaultDir)) })
	if err := s.proc.Interrupt(); err != nil {
		s.t.Errorf("clean stop: %v\n%s", err, lastLines(s.proc.Output(), 20))
	}
	if gap := vaultGap(s.t, vaultDir, k.ids); gap != "" {
		tr.Lost = gap
		s.t.Errorf("the vault after the kills: %s", gap)
	}
	tr.Outcome = "the restarted service resumed shipping from its slot; the vault verifies with no WAL gap, holds a base backup and every WAL position the drive had reported flushed"
}

// verifiedOK counts the backups the status lists as verified.
func verifiedOK(st *status.Status) int {
	n := 0
	for _, b := range st.Backups {
		if b.Verified == "ok" {
			n++
		}
	}
	return n
}
