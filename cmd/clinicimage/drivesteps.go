package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
)

// The steps that follow one drive through the box as the practice's IT
// person and front desk would: plug, enroll, backup, eject, and the
// drive checked on the host afterwards. Steps hand what they learn on in
// smoke.drive.

// driveRun is what the drive steps learn and pass on.
type driveRun struct {
	// image is the enrolled drive's disk image; id its drive ID.
	image, id string
	// visits is how many encounters the clinic had recorded once the WAL
	// holding the last one reached the drive.
	visits int64
	// visitsSegment is the WAL segment (its file name) that holds the
	// last of those visits, completed on the server after them, and
	// visitsAt a moment after it was completed, before anything later
	// was committed.
	visitsSegment string
	visitsAt      time.Time
	// repo is the host's copy of the drive's repository.
	repo string
	// drillReport names the box's drill report on the drive (.json, .html).
	drillReport string
	// failedReport names the report of the drill made to fail.
	failedReport string
}

// The enrolled drive: its qemu id, its size (sparse) and generation.
const (
	sonUSB  = "son"
	sonSize = 1 << 30
	sonGen  = "Son"
)

// boxSignIn sets the box password at the first visit, as the IT person
// does with the setup code the box shows on its screen (the serial
// console here), and waits until the box trusts its clock and reaches the
// database.
func boxSignIn(ctx context.Context, s *smoke) error {
	if err := pinBox(ctx, s); err != nil {
		return err
	}
	err := s.poll(ctx, time.Second, func() error {
		b, err := os.ReadFile(s.vm.SerialLog)
		if err != nil {
			return err
		}
		m := setupCodeLine.FindSubmatch(b)
		if m == nil {
			return fmt.Errorf("serial console shows no setup code yet")
		}
		s.box.SetSetupCode(string(m[1]))
		return s.box.SignIn(ctx)
	})
	if err != nil {
		return err
	}
	return s.pollStatus(ctx, func(st *status.Status) error {
		if err := boxReady(st); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "smoke: box password set; database %s (PostgreSQL %d) reachable; %q\n", st.Database.Target, st.Database.Version/10000, st.Headline)
		return nil
	})
}

// setupCodeLine is how clinicbox shows the page's setup code on the
// console.
var setupCodeLine = regexp.MustCompile(`setup code for the box's page: ([A-Z0-9]{5}-[A-Z0-9]{5})`)

// plugNewDrive plugs a freshly formatted drive and waits for the kernel
// to attach it and the box to offer it for enrollment.
func plugNewDrive(ctx context.Context, s *smoke) error {
	s.drive.image = filepath.Join(s.dir, sonUSB+".img")
	if err := makeExt4Disk(ctx, s.drive.image, sonSize, "BACKUP"); err != nil {
		return err
	}
	return s.plugUnknown(ctx, sonUSB, s.drive.image)
}

// plugUnknown plugs a disk image that holds no identity and waits until
// the status shows it as an unknown drive, not written.
func (s *smoke) plugUnknown(ctx context.Context, id, image string) error {
	from := serialSize(s.vm.SerialLog)
	if err := s.vm.PlugUSB(ctx, id, image); err != nil {
		return err
	}
	if _, err := s.waitSerial(ctx, from, "Attached SCSI"); err != nil {
		return err
	}
	return s.pollStatus(ctx, func(st *status.Status) error {
		if err := offeredForEnrollment(st); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "smoke: %s: %q\n", id, st.Headline)
		return nil
	})
}

// enrollAndBackUp enrolls the drive in the box and waits for its first
// base backup to be verified.
func enrollAndBackUp(ctx context.Context, s *smoke) error { return enrollAs(ctx, s, sonGen) }

// enrollAs enrolls the drive in the box as generation gen and waits for
// its first base backup to be verified.
func enrollAs(ctx context.Context, s *smoke, gen string) error {
	if err := s.box.Act(ctx, "enroll", gen); err != nil {
		return err
	}
	return s.pollStatus(ctx, func(st *status.Status) error {
		id, err := enrolledInBox(st, gen)
		if err != nil {
			return err
		}
		b, err := verifiedBackup(st, id)
		if err != nil {
			return err
		}
		s.drive.id = id
		fmt.Fprintf(s.out, "smoke: %s is %s; backup %s, %.1f MB in %s, verified\n",
			gen, id, b.ID, float64(b.Bytes)/1e6, b.End.Sub(b.Start).Round(100*time.Millisecond))
		return nil
	})
}

// visitsReachDrive records visits at the clinic after the base backup,
// completes their WAL segment (so that the drive holds it whole, for
// damagedWALFailsDrill) and waits until that WAL is on the drive.
func visitsReachDrive(ctx context.Context, s *smoke) error {
	conn, err := s.db.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for range 5 {
		if err := pgcluster.ClinicVisit(ctx, conn, rng, clinicPatients); err != nil {
			return err
		}
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM encounters").Scan(&s.drive.visits); err != nil {
		return err
	}
	// pg_walfile_name of the end of a switched segment names that segment.
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&s.drive.visitsSegment); err != nil {
		return err
	}
	s.drive.visitsAt = time.Now()
	lsn, err := s.db.CurrentLSN(ctx, false)
	if err != nil {
		return err
	}
	return s.pollStatus(ctx, func(st *status.Status) error {
		if err := flushedPast(st, lsn); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "smoke: %d visits, their segment %s completed; WAL on the drive reaches %s\n", s.drive.visits, s.drive.visitsSegment, st.WAL.Local.FlushedLSN)
		return nil
	})
}

// ejectAndUnplug presses acknowledge and eject on the box's page, waits
// for "safe to remove" and pulls the drive.
func ejectAndUnplug(ctx context.Context, s *smoke) error {
	st, err := s.box.Status(ctx)
	if err != nil {
		return err
	}
	cond := firstUnacknowledged(st)
	if err := s.box.Act(ctx, "acknowledge", ""); err != nil {
		return err
	}
	if cond != nil {
		if err := s.pollStatus(ctx, func(st *status.Status) error { return acknowledged(st, *cond) }); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "smoke: acknowledged %q\n", cond.Name)
	}
	if err := s.box.Act(ctx, "eject", ""); err != nil {
		return err
	}
	if err := s.pollStatus(ctx, func(st *status.Status) error { return ejectedSafely(st, s.drive.id) }); err != nil {
		return err
	}
	if err := s.vm.UnplugUSB(ctx, sonUSB); err != nil {
		return err
	}
	return s.pollStatus(ctx, func(st *status.Status) error {
		where, err := boxEmpty(st, s.drive.id)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "smoke: %s unplugged, now %q; %q\n", sonGen, where, st.Headline)
		return nil
	})
}

// verifyOnHost checks the unplugged drive on the host: a clean file
// system with the drive's identity and repository, which clinicctl verify
// accepts with the practice's recovery key.
func verifyOnHost(ctx context.Context, s *smoke) error {
	if out, err := exec.CommandContext(ctx, "e2fsck", "-f", "-n", s.drive.image).CombinedOutput(); err != nil {
		return fmt.Errorf("e2fsck -fn %s: %w\n%s", s.drive.image, err, out)
	}
	names, err := ext4List(ctx, s.drive.image, 0, "/")
	if err != nil {
		return err
	}
	for _, want := range []string{identityFileOnDrive, repoDirOnDrive} {
		if !slices.Contains(names, want) {
			return fmt.Errorf("the drive's root holds %q; want %s", names, want)
		}
	}
	if s.drive.repo, err = s.host.copyRepo(ctx, s.drive.image, sonUSB); err != nil {
		return err
	}
	out, err := s.host.run(ctx, "verify", "--repo", s.drive.repo, "--identity", s.host.identity)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "smoke: clinicctl verify: %s\n", lastLine(out))
	return nil
}

// restoreOnHost restores the drive's repository with clinicctl restore,
// starts PostgreSQL on it with pg_ctl and checks that every visit is
// there.
func restoreOnHost(ctx context.Context, s *smoke) error {
	h := s.host
	pgdata := filepath.Join(h.dir, "restored")
	args := []string{"restore", "--repo", s.drive.repo, "--identity", h.identity, "--pgdata", pgdata, "--latest"}
	if h.uid >= 0 {
		args = append(args, "--owner", "postgres")
	}
	if _, err := h.run(ctx, args...); err != nil {
		return err
	}
	run, err := h.serverDir("restored-run")
	if err != nil {
		return err
	}
	srv, err := restore.StartServer(ctx, pgdata, run, h.uid, h.gid)
	if err != nil {
		return err
	}
	pid, err := pgbin.PostmasterPID(pgdata)
	if err != nil {
		srv.Stop()
		return err
	}
	err = checkRestored(ctx, srv, s.drive.visits)
	if stopErr := stopPostmaster(pid); err == nil {
		err = stopErr
	}
	if err != nil {
		return fmt.Errorf("%w\n%s", err, srv.LogTail(2000))
	}
	fmt.Fprintf(s.out, "smoke: restored server (pid %d) held all %d visits; stopped\n", pid, s.drive.visits)
	return nil
}

// checkRestored waits for recovery to end and compares the clinic's
// tables with what was committed before the drive came out.
func checkRestored(ctx context.Context, srv *restore.Server, visits int64) error {
	if err := srv.WaitRecovered(ctx); err != nil {
		return err
	}
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var patients, encounters, notes int64
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM encounters), (SELECT count(*) FROM notes)").Scan(&patients, &encounters, &notes); err != nil {
		return err
	}
	if patients != clinicPatients || encounters != visits || notes != visits {
		return fmt.Errorf("restored %d patients, %d encounters, %d notes; want %d, %d, %d", patients, encounters, notes, clinicPatients, visits, visits)
	}
	return nil
}

// unknownDriveUntouched plugs a drive that is never enrolled, waits for the
// status to say it is not written, pulls it and checks that its image did
// not change by a byte.
func unknownDriveUntouched(ctx context.Context, s *smoke) error {
	const id = "stranger"
	image := filepath.Join(s.dir, id+".img")
	if err := makeExt4Disk(ctx, image, 64<<20, "STRANGER"); err != nil {
		return err
	}
	before, err := fileSum(image)
	if err != nil {
		return err
	}
	if err := s.plugUnknown(ctx, id, image); err != nil {
		return err
	}
	if err := s.vm.UnplugUSB(ctx, id); err != nil {
		return err
	}
	if err := s.pollStatus(ctx, func(st *status.Status) error { _, err := boxEmpty(st, ""); return err }); err != nil {
		return err
	}
	after, err := fileSum(image)
	if err != nil {
		return err
	}
	names, err := ext4List(ctx, image, 0, "/")
	if err != nil {
		return err
	}
	if slices.Contains(names, repoDirOnDrive) || slices.Contains(names, identityFileOnDrive) {
		return fmt.Errorf("the unknown drive's root holds %q after the box had it", names)
	}
	if before != after {
		return fmt.Errorf("the unknown drive's image changed: sha256 %x before, %x after", before, after)
	}
	fmt.Fprintf(s.out, "smoke: %s unplugged; image unchanged (sha256 %x)\n", id, after[:8])
	return nil
}

func fileSum(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
