package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/clinicbox/clinicbox/appliance/web/webclient"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
)

// smokePrereqs says what the smoke needs and this machine lacks, with the
// Debian package that has it (.ci/setup installs them all).
func smokePrereqs(m Smoke) error {
	progs := []struct{ prog, pkg string }{
		{m.Qemu, "qemu-system-x86"}, {"mkfs.ext4", "e2fsprogs"}, {"debugfs", "e2fsprogs"}, {"e2fsck", "e2fsprogs"},
	}
	if m.Machine == piMachine {
		progs[0].pkg = "qemu-system-arm"
		progs = append(progs, struct{ prog, pkg string }{"mcopy", "mtools"})
	}
	for _, p := range progs {
		if _, err := exec.LookPath(p.prog); err != nil {
			return fmt.Errorf("%w (install %s, see .ci/setup)", err, p.pkg)
		}
	}
	if _, err := os.Stat(m.OVMF); m.OVMF != "" && err != nil {
		return fmt.Errorf("UEFI firmware: %w (install ovmf)", err)
	}
	if _, err := pgcluster.BinDir(); err != nil {
		return fmt.Errorf("%w (install postgresql)", err)
	}
	return nil
}

// setUp starts what the steps run against: clinicctl and the practice's
// recovery key on the host, the clinic's database, the image with the
// box's settings on /perm, and the machine, whose guest reaches the
// database through a relay. stop ends what was started, in reverse and
// by process ID, and puts the first error it meets into *err if that is
// nil.
func (s *smoke) setUp(ctx context.Context, root string, t *Target, keep bool, stderr io.Writer) (stop func(err *error), err error) {
	var undo []func(failed bool) error
	stop = func(errp *error) {
		for i := len(undo) - 1; i >= 0; i-- {
			if err := undo[i](*errp != nil); err != nil && *errp == nil {
				*errp = err
			}
		}
	}
	start := time.Now()
	if s.host, err = newHostSide(ctx, root); err != nil {
		return stop, err
	}
	undo = append(undo, func(failed bool) error {
		if keep || failed {
			fmt.Fprintf(s.out, "smoke: kept %s\n", s.host.dir)
			return nil
		}
		s.host.Remove()
		return nil
	})
	self, err := os.Executable()
	if err != nil {
		return stop, err
	}
	dbAddr := func() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.dbPort)) }
	undo = append(undo, func(bool) error { return s.relaysGone(self, dbAddr) })
	if s.db, err = startHostDB(ctx, s.set.walSegMiB()); err != nil {
		return stop, err
	}
	s.dbPort = s.db.Port
	undo = append(undo, func(bool) error {
		if s.fwd != nil {
			s.fwd.Close()
		}
		err := s.db.Stop()
		fmt.Fprintf(s.out, "smoke: stopped PostgreSQL pid %d\n", s.db.pid)
		return err
	})
	fmt.Fprintf(s.out, "smoke: PostgreSQL pid %d on port %d, clinicctl and the recovery key ready in %s\n", s.db.pid, s.db.Port, since(start))

	image, password, err := s.makeImage(ctx, root, t, keep, stderr)
	if err != nil {
		return stop, err
	}
	if err := s.boot(ctx, image, guestForward{Guest: guestDBAddr, Command: []string{self, "relay", dbAddr()}}); err != nil {
		return stop, err
	}
	undo = append(undo, func(bool) error {
		err := s.vm.Stop()
		fmt.Fprintf(s.out, "smoke: stopped qemu pid %d\n", s.vm.Pid())
		if err != nil {
			return fmt.Errorf("smoke: qemu: %w", err)
		}
		return nil
	})
	fmt.Fprintf(s.out, "smoke: qemu pid %d, web interface on %s, the box's pages on %s\n", s.vm.Pid(), s.vm.HTTPAddr, s.vm.PagesAddr)
	s.ui = &webUI{Base: "http://" + s.vm.HTTPAddr, Password: password}
	s.root, s.target, s.stderr = root, t, stderr
	// Pinned to no certificate until the box's log shows its fingerprint
	// (pinBox).
	s.box = webclient.New("https://"+s.vm.PagesAddr, rand.Text(), "")
	return stop, nil
}

// relaysGone checks, once qemu and the database are stopped, that every
// relay to the database has ended (each has lost its input or its
// connection), and kills any left.
func (s *smoke) relaysGone(self string, dbAddr func() string) error {
	if s.db == nil {
		return nil
	}
	if left := relaysLeft(self, dbAddr(), 5*time.Second); len(left) > 0 {
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return fmt.Errorf("smoke: relays %v were still running after qemu and PostgreSQL stopped; killed", left)
	}
	return nil
}

// makeImage builds the target's image with the box's settings on /perm
// and returns it with the password of its gokrazy web interface (kept in
// the smoke's directory with keep).
func (s *smoke) makeImage(ctx context.Context, root string, t *Target, keep bool, stderr io.Writer) (image, password string, err error) {
	seed := filepath.Join(s.dir, "perm")
	if err := (boxSeed{DBHost: hostOf(guestDBAddr), DBPort: portOf(guestDBAddr), DBUser: pgcluster.ReplUser, DBPassword: pgcluster.ReplPassword,
		DBFingerprint: s.db.cert.SHA256, Recipient: s.host.recipient, Generations: []string{sonGen, "Father", "Grandfather"},
		Panel: s.set.panel()}).write(seed); err != nil {
		return "", "", err
	}
	if err := s.set.seedClock(seed, time.Now()); err != nil {
		return "", "", err
	}
	password = rand.Text()
	if keep {
		os.WriteFile(filepath.Join(s.dir, "http-password.txt"), []byte(password+"\n"), 0o600)
	}
	image = filepath.Join(s.dir, "clinicbox.img")
	start := time.Now()
	if err := buildImage(ctx, root, t, password, image, seed, io.Discard, stderr); err != nil {
		return "", "", err
	}
	fmt.Fprintf(s.out, "smoke: built the %s image in %s\n", t.Name, since(start))
	return image, password, nil
}

// boot starts the machine on image with its extra disks, the guest
// reaching the database through relay.
func (s *smoke) boot(ctx context.Context, image string, relay guestForward) error {
	disks, err := makeDisks(s.dir, smokeDisks, 64<<20)
	if err != nil {
		return err
	}
	m := s.set
	pi, err := m.piBoot(ctx, image, s.dir)
	if err != nil {
		return err
	}
	s.vm, err = startVM(ctx, vmConfig{Qemu: m.Qemu, OVMF: m.OVMF, Image: image,
		MemoryMiB: m.MemoryMiB, CPUs: m.CPUs, Dir: s.dir, Forwards: []guestForward{relay}, Pi: pi, Disks: disks})
	return err
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
