// Package usbtest provides stand-ins for drives in tests (drive step of the
// data path): loop devices holding filesystem images, a replayable uevent
// source, and copies of recorded sysfs trees.
package usbtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
	"golang.org/x/sys/unix"
)

// Loop is a loop device attached to an image file.
type Loop struct {
	Name string // kernel name: "loop3"
	Dev  string // device node: "/dev/loop3"

	mu       sync.Mutex
	detached bool
}

// AttachLoop attaches image read-write to a free loop device and detaches it
// when the test ends, whether it passed or not. It skips t (see testenv)
// unless running as root with /dev/loop-control.
func AttachLoop(t testing.TB, image string) *Loop {
	t.Helper()
	return attachFor(t, image, attach)
}

// AttachLoopAt is AttachLoop on the loop device name ("loop3"), which must
// be free: a test of what happens when the kernel gives a device's number
// to another image.
func AttachLoopAt(t testing.TB, image, name string) *Loop {
	t.Helper()
	return attachFor(t, image, func(image string) (*Loop, error) {
		l, err := configure(image, name)
		if errors.Is(err, unix.EBUSY) {
			err = fmt.Errorf("%w (another process took it)", err)
		}
		return l, err
	})
}

func attachFor(t testing.TB, image string, attach func(string) (*Loop, error)) *Loop {
	t.Helper()
	testenv.NeedRoot(t)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Skip(t, "no /dev/loop-control")
	}
	l, err := attach(image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Detach(); err != nil {
			t.Errorf("detach %s: %v", l.Dev, err)
		}
	})
	return l
}

// attach asks loop-control for a free device and configures it, trying again
// when another process takes the same device first.
func attach(image string) (*Loop, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("usbtest: attach %s: %w", image, err)
	}
	defer ctl.Close()
	for range 50 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("usbtest: attach %s: LOOP_CTL_GET_FREE: %w", image, err)
		}
		l, err := configure(image, fmt.Sprintf("loop%d", n))
		if errors.Is(err, unix.EBUSY) {
			continue
		}
		return l, err
	}
	return nil, fmt.Errorf("usbtest: attach %s: no free loop device", image)
}

// configure attaches image to the loop device name; EBUSY when it is taken.
func configure(image, name string) (*Loop, error) {
	img, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("usbtest: attach %s: %w", image, err)
	}
	defer img.Close()
	cfg := unix.LoopConfig{Fd: uint32(img.Fd())}
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], filepath.Base(image))
	dev, err := os.OpenFile("/dev/"+name, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("usbtest: attach %s: %w", image, err)
	}
	err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
	dev.Close()
	if err != nil {
		return nil, fmt.Errorf("usbtest: attach %s to %s: %w", image, name, err)
	}
	return &Loop{Name: name, Dev: "/dev/" + name}, nil
}

// Detach detaches the loop device, like pulling the drive. If it is still
// open or mounted, the kernel detaches it once the last user lets go.
// Detaching twice is no error.
func (l *Loop) Detach() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.detached {
		return nil
	}
	dev, err := os.OpenFile(l.Dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("usbtest: detach %s: %w", l.Dev, err)
	}
	defer dev.Close()
	// A device left read-only (BLKROSET) would stay so for whoever
	// attaches it next.
	unix.IoctlSetPointerInt(int(dev.Fd()), unix.BLKROSET, 0)
	err = unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
	if err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("usbtest: detach %s: %w", l.Dev, err)
	}
	l.detached = true
	return nil
}
