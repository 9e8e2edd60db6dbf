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
	dbAddr := func() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.db.Port)) }
	undo = append(undo, func(bool) error {
		if s.db == nil {
			return nil
		}
		// With qemu and the database gone, every relay has lost its input
		// or its connection.
		if left := relaysLeft(self, dbAddr(), 5*time.Second); len(left) > 0 {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return fmt.Errorf("smoke: relays %v were still running after qemu and PostgreSQL stopped; killed", left)
		}
		return nil
	})
	if s.db, err = startHostDB(ctx); err != nil {
		return stop, err
	}
	undo = append(undo, func(bool) error {
		err := s.db.Stop()
		fmt.Fprintf(s.out, "smoke: stopped PostgreSQL pid %d\n", s.db.pid)
		return err
	})
	fmt.Fprintf(s.out, "smoke: PostgreSQL pid %d on port %d, clinicctl and the recovery key ready in %s\n", s.db.pid, s.db.Port, since(start))

	seed := filepath.Join(s.dir, "perm")
	if err := (boxSeed{DBHost: hostOf(guestDBAddr), DBPort: portOf(guestDBAddr), DBUser: pgcluster.ReplUser, DBPassword: pgcluster.ReplPassword,
		DBFingerprint: s.db.cert.SHA256, Recipient: s.host.recipient, Generations: []string{sonGen, "Father", "Grandfather"},
		Panel: s.set.panel()}).write(seed); err != nil {
		return stop, err
	}
	if err := s.set.seedClock(seed, time.Now()); err != nil {
		return stop, err
	}
	password := rand.Text()
	if keep {
		os.WriteFile(filepath.Join(s.dir, "http-password.txt"), []byte(password+"\n"), 0o600)
	}
	image := filepath.Join(s.dir, "clinicbox.img")
	start = time.Now()
	if err := buildImage(ctx, root, t, password, image, seed, io.Discard, stderr); err != nil {
		return stop, err
	}
	fmt.Fprintf(s.out, "smoke: built the %s image in %s\n", t.Name, since(start))

	relay := guestForward{Guest: guestDBAddr, Command: []string{self, "relay", dbAddr()}}
	disks, err := makeDisks(s.dir, smokeDisks, 64<<20)
	if err != nil {
		return stop, err
	}
	m := s.set
	pi, err := m.piBoot(ctx, image, s.dir)
	if err != nil {
		return stop, err
	}
	if s.vm, err = startVM(ctx, vmConfig{Qemu: m.Qemu, OVMF: m.OVMF, Image: image,
		MemoryMiB: m.MemoryMiB, CPUs: m.CPUs, Dir: s.dir, Forwards: []guestForward{relay}, Pi: pi, Disks: disks}); err != nil {
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

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
