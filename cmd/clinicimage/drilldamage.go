package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// A drive whose WAL was damaged while it was out of the box fails the
// box's drill. A drill to the latest restores from the base backup the
// box takes as soon as the drive is back, past the damage; so the drill
// is asked for at a moment before that backup, which only the damaged
// WAL reaches.

// damageWALOnHost flips a byte in the middle of the WAL segment that holds
// the visits (visitsReachDrive completed it, after the first backup) on
// the unplugged drive, plugs the drive back in and waits until the box
// has taken a new base backup of it and checked it. The box's
// verification reads every stored segment, so it must fail, naming the
// damaged one.
func damageWALOnHost(ctx context.Context, s *smoke) error {
	seg := s.drive.visitsSegment
	file := fmt.Sprintf("/%s/wal/%s/%s.zst.age", repoDirOnDrive, seg[:8], seg)
	if err := flipByteInExt4File(ctx, s.drive.image, file, filepath.Join(s.dir, "damage")); err != nil {
		return err
	}
	st, err := s.box.Status(ctx)
	if err != nil {
		return err
	}
	before := backupsOf(st, s.drive.id)
	if err := s.vm.PlugUSB(ctx, sonUSB, s.drive.image); err != nil {
		return err
	}
	return s.pollStatus(ctx, func(st *status.Status) error {
		if st.InBox == nil {
			return fmt.Errorf("%s is not in the box yet (%s)", sonGen, st.Headline)
		}
		if _, err := enrolledInBox(st, sonGen); err != nil {
			return err
		}
		_, err := verifiedBackup(st, s.drive.id)
		switch {
		case backupsOf(st, s.drive.id) <= before:
			return fmt.Errorf("no new backup of %s yet (%s)", s.drive.id, st.Headline)
		case err == nil:
			return failNowf("the new backup of %s verified, though %s on the drive is damaged", s.drive.id, seg)
		case !isFailNow(err):
			return err
		case !strings.Contains(err.Error(), seg):
			return failNowf("the new backup's verification failed without naming %s: %v", seg, err)
		}
		fmt.Fprintf(s.out, "smoke: %s damaged on the unplugged drive; plugged back in: %v\n", file, err)
		return nil
	})
}

func backupsOf(st *status.Status, drive string) int {
	n := 0
	for _, b := range st.Backups {
		if b.Drive == drive {
			n++
		}
	}
	return n
}

// damagedWALFailsDrill asks the box on its page for a drill to the moment
// just after the damaged segment was completed (older than the drive's
// new backup, so the drill restores the first backup and replays the
// damaged WAL), waits for the drill to fail, red, with the segment named
// in its problems and in the drill's own condition (not only in the
// failed verification's), then acknowledges, ejects and unplugs the
// drive for the steps after.
func damagedWALFailsDrill(ctx context.Context, s *smoke) error {
	seg := s.drive.visitsSegment
	at := s.drive.visitsAt.UTC().Format(time.RFC3339Nano)
	if err := s.poll(ctx, 2*time.Second, func() error { return s.box.Act(ctx, "drill", at) }); err != nil {
		return err
	}
	err := s.pollStatus(ctx, func(st *status.Status) error {
		d, err := failedDrillShown(st, s.drive.id, seg, func(d status.Drill) bool { return d.Target == "time "+at })
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "smoke: the box's drill to %s failed as it should, red: %q; problems: %s\n", at, st.Headline, strings.Join(d.Problems, "; "))
		return nil
	})
	if err != nil {
		return err
	}
	return ejectAndUnplug(ctx, s)
}

// flipByteInExt4File inverts the byte in the middle of file path of the
// ext4 file system on image (a drive formatted whole, not in use) where
// it lies on the image, and checks, with copies of the file taken before
// and after in scratch, that exactly that byte of the file changed.
func flipByteInExt4File(ctx context.Context, image, path, scratch string) error {
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return err
	}
	orig, err := ext4Cat(ctx, image, path, filepath.Join(scratch, "before"))
	if err != nil {
		return err
	}
	if len(orig) == 0 {
		return fmt.Errorf("%s on %s is empty", path, image)
	}
	at, err := ext4ByteOffset(ctx, image, path, int64(len(orig)/2))
	if err != nil {
		return err
	}
	if err := flipByteAt(image, at); err != nil {
		return err
	}
	got, err := ext4Cat(ctx, image, path, filepath.Join(scratch, "after"))
	if err != nil {
		return err
	}
	want := bytes.Clone(orig)
	want[len(want)/2] ^= 0xff
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s on %s: flipping the byte at %d of the image did not change exactly byte %d of the file", path, image, at, len(orig)/2)
	}
	return nil
}

// ext4Cat copies file path of the ext4 file system on image to dest and
// returns its contents.
func ext4Cat(ctx context.Context, image, path, dest string) ([]byte, error) {
	os.Remove(dest)
	if _, err := debugfs(ctx, image, 0, fmt.Sprintf("dump %s %s", path, dest)); err != nil {
		return nil, err
	}
	return os.ReadFile(dest)
}

var ext4BlockSize = regexp.MustCompile(`(?m)^Block size:\s+(\d+)$`)

// ext4ByteOffset returns where byte off of file path lies on the image of
// an ext4 file system: its block (debugfs "blocks" lists them in the
// file's order) times the block size, plus off within the block.
func ext4ByteOffset(ctx context.Context, image, path string, off int64) (int64, error) {
	stats, err := debugfs(ctx, image, 0, "stats")
	if err != nil {
		return 0, err
	}
	m := ext4BlockSize.FindSubmatch(stats)
	if m == nil {
		return 0, fmt.Errorf("debugfs stats of %s names no block size", image)
	}
	bs, _ := strconv.ParseInt(string(m[1]), 10, 64)
	out, err := debugfs(ctx, image, 0, "blocks "+path)
	if err != nil {
		return 0, err
	}
	blocks := strings.Fields(string(out))
	if bs <= 0 || off/bs >= int64(len(blocks)) {
		return 0, fmt.Errorf("%s on %s: byte %d is not in its blocks %q (block size %d)", path, image, off, blocks, bs)
	}
	blk, err := strconv.ParseInt(blocks[off/bs], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s on %s: debugfs blocks: %w", path, image, err)
	}
	return blk*bs + off%bs, nil
}

// flipByteAt inverts the byte at offset at of the file name and syncs it.
func flipByteAt(name string, at int64) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		return err
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		return err
	}
	return f.Sync()
}
