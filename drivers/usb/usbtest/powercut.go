package usbtest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// fsShutdown is FS_IOC_SHUTDOWN (linux/fs.h, _IOR('X', 125, __u32)) and
// its NOLOGFLUSH flag; golang.org/x/sys does not define them.
const (
	fsShutdown           = 0x8004587D
	fsShutdownNoLogFlush = 0x2
)

// CutPower shuts down the filesystem mounted at dir without writing
// anything more to its device, as a power cut would (xfstests' "godown"):
// every later read and write on it fails, and what it had not yet
// written never reaches the device.
func CutPower(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), fsShutdown, fsShutdownNoLogFlush); err != nil {
		t.Fatalf("usbtest: shut down %s: %v", dir, err)
	}
}
