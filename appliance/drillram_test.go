package appliance

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/drivers/tmpfs"
	"golang.org/x/sys/unix"
)

// ramRig is a box whose file systems cannot encrypt (its drives are
// directories on the host's file system and it has no encrypted scratch
// of its own), as on a kernel without fscrypt: its drills may only run in
// memory, under the returned directory, with the memory figures mem.
func ramRig(t *testing.T, mem tmpfs.Memory, fetch string) (*rig, string) {
	t.Helper()
	testenv.NeedRoot(t) // mounting a tmpfs
	// The drill's PostgreSQL runs as its own user: it must pass through.
	ram, err := os.MkdirTemp("", "clinicbox-ram-parent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ram) })
	os.Chmod(ram, 0o711)
	if fetch == "" {
		fetch = clinicctlBinary(t)
	}
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), func(c *Config) {
		c.Settings.Drills = json.RawMessage(`{"after_enrollment": false}`)
		c.Drills = &DrillConfig{FetchProgram: fetch, RAMScratch: ram, Memory: func() (tmpfs.Memory, error) { return mem, nil }}
	})
	if err := r.db.Exec(context.Background(), "GRANT pg_read_all_data TO "+pgtest.ReplUser); err != nil {
		t.Fatal(err)
	}
	r.at(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 7, 0)
	return r, ram
}

// mountedUnder lists the mounts below dir.
func mountedUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// Where no file system can encrypt, a drill of a database that fits the
// memory the box can spare restores into a tmpfs sized to that budget,
// passes, says so in its signed report and the status with the peak
// memory of PostgreSQL and of the box, and unmounts the tmpfs after.
func TestDrillInMemoryWhereNothingEncrypts(t *testing.T) {
	gate := newWALGate(t)
	r, ram := ramRig(t, tmpfs.Memory{Total: 4 << 30, Available: 2 << 30}, gate.program)
	r.enroll("blue")
	if err := r.a.Do(context.Background(), ActDrill, "", "test"); err != nil {
		t.Fatal(err)
	}
	gate.reached(t)
	mounts := mountedUnder(t, ram)
	if len(mounts) != 1 {
		t.Fatalf("mounts under the RAM scratch while the drill replays: %v; want one", mounts)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mounts[0], &st); err != nil {
		t.Fatal(err)
	}
	if size := int64(st.Blocks) * st.Bsize; st.Type != unix.TMPFS_MAGIC || size != ramBudget(tmpfs.Memory{Total: 4 << 30, Available: 2 << 30}) {
		t.Errorf("the drill's scratch: type %#x, %d bytes; want a tmpfs of the budget", st.Type, size)
	}
	if data, _ := filepath.Glob(filepath.Join(mounts[0], "clinicbox-drill-*", "pgdata", "PG_VERSION")); len(data) != 1 {
		t.Errorf("no restored data directory in the tmpfs: %v", data)
	}
	gate.open()
	st2 := r.wait("the drill", func(st status.Status) bool { _, ok := lastDrill(st); return ok && !hasCondition(st, CondDrilling) })
	d, _ := lastDrill(st2)
	if !d.OK || !d.InRAM || d.NotRun || d.ServerPeakRSS <= 0 || d.BoxPeakRSS <= 0 {
		t.Fatalf("drill: %+v; want passed, in memory, with both peaks", d)
	}
	b, err := os.ReadFile(filepath.Join(r.a.cfg.StateDir, "drills", d.Report+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep restore.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if err := rep.VerifySignature(r.a.key.Signer.Public()); err != nil || rep.Scratch != "memory" || rep.ServerPeakRSS != d.ServerPeakRSS {
		t.Errorf("report: %v, scratch %q, PostgreSQL peak %d; want signed, in memory, peak %d", err, rep.Scratch, rep.ServerPeakRSS, d.ServerPeakRSS)
	}
	if m := mountedUnder(t, ram); len(m) > 0 {
		t.Errorf("still mounted after the drill: %v", m)
	}
	if entries, _ := os.ReadDir(ram); len(entries) > 0 {
		t.Errorf("left in the RAM scratch's parent: %v", entries)
	}
}

// A database larger than the memory budget is not drilled in memory: the
// drill is recorded as not run with the sizes and the fix, shown amber
// ("drill not run") and never as passed or as a failed restore, and
// nothing is mounted.
func TestDrillNotRunWhenDatabaseExceedsMemory(t *testing.T) {
	r, ram := ramRig(t, tmpfs.Memory{Total: 2 << 30, Available: drillReserve + 1<<20}, "")
	r.enroll("blue")
	if err := r.a.Do(context.Background(), ActDrill, "", "test"); err != nil {
		t.Fatal(err)
	}
	st := r.wait("the drill not run", func(st status.Status) bool { return hasCondition(st, condDrillNotRun) })
	d, _ := lastDrill(st)
	if d.OK || !d.NotRun || len(d.Problems) == 0 || !strings.Contains(d.Problems[0], "can spare 1 MiB") || !strings.Contains(d.Problems[0], "tune2fs -O encrypt") {
		t.Errorf("drill: %+v; want not run, naming the budget and the fix", d)
	}
	if hasCondition(st, condDrillFailed) || st.Severity != status.Attention {
		t.Errorf("severity %v, conditions %v; want attention for a drill not run, no failed drill", st.Severity, st.Conditions)
	}
	if m := mountedUnder(t, ram); len(m) > 0 {
		t.Errorf("mounted after a drill not run: %v", m)
	}
}

func TestRAMBudget(t *testing.T) {
	for _, c := range []struct {
		mem  tmpfs.Memory
		want int64
	}{
		{tmpfs.Memory{Total: 2 << 30, Available: 1200 << 20}, 1200<<20 - drillReserve}, // a 2 GB Pi, busy
		{tmpfs.Memory{Total: 16 << 30, Available: 15 << 30}, 8 << 30},                  // half the RAM at most
		{tmpfs.Memory{Total: 1 << 30, Available: 300 << 20}, 0},                        // nothing to spare
	} {
		if got := ramBudget(c.mem); got != c.want {
			t.Errorf("ramBudget(%+v) = %d; want %d", c.mem, got, c.want)
		}
	}
}
