package tmpfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
	"golang.org/x/sys/unix"
)

// A tmpfs holds at most its size, and Remove frees it: afterwards the
// mount point is gone and nothing of what was written remains.
func TestMountHoldsItsSizeAndRemoveFrees(t *testing.T) {
	testenv.NeedRoot(t)
	parent := t.TempDir()
	d, err := Mount(parent, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(d.Path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC || int64(st.Blocks)*st.Bsize != 1<<20 {
		t.Fatalf("statfs: type %#x, %d bytes; want tmpfs of 1 MiB", st.Type, int64(st.Blocks)*st.Bsize)
	}
	err = os.WriteFile(filepath.Join(d.Path, "big"), make([]byte, 2<<20), 0o600)
	if !errors.Is(err, unix.ENOSPC) {
		t.Errorf("writing 2 MiB into 1 MiB: %v; want ENOSPC", err)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("after Remove the parent holds %v; want nothing", entries)
	}
}

// Sweep unmounts a tmpfs a stopped service left mounted, and deletes a
// mount point left empty; it leaves other directories alone.
func TestSweepUnmountsLeftovers(t *testing.T) {
	testenv.NeedRoot(t)
	parent := t.TempDir()
	d, err := Mount(parent, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Path, "pg_control"), []byte("patient data"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(parent, prefix+"empty")
	other := filepath.Join(parent, "keep")
	for _, p := range []string{empty, other} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := Sweep(parent); err != nil {
		t.Fatal(err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), d.Path) {
		t.Errorf("%s is still mounted after Sweep", d.Path)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 || entries[0].Name() != "keep" {
		t.Errorf("after Sweep the parent holds %v; want only keep", entries)
	}
}

func TestParseMemory(t *testing.T) {
	const meminfo = "MemTotal:        2009468 kB\nMemFree:          120000 kB\nMemAvailable:    1634020 kB\nHugePages_Total:       0\n"
	m, err := ParseMemory(strings.NewReader(meminfo))
	if err != nil {
		t.Fatal(err)
	}
	if m.Total != 2009468<<10 || m.Available != 1634020<<10 {
		t.Errorf("got %+v; want MemTotal and MemAvailable in bytes", m)
	}
	if _, err := ParseMemory(strings.NewReader("MemTotal: 1 kB\n")); err == nil {
		t.Error("meminfo without MemAvailable: no error; want one")
	}
}
