package fault

import (
	"context"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/jackc/pglogrepl"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// The appliance streams onto a drive that is pulled without the button:
// it records the pull, the drive's repository still verifies, and the
// next drive put in gets a full base backup before the stream continues
// on it, with no WAL gap.
func TestApplianceDrivePulled(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	tr := newTry(t, "drive pulled without the button while the appliance streams onto it (simulated drive)")
	s := startService(t, c, "", nil)
	blue := s.enroll("blue")
	s.eject("blue")
	s.enroll("green")
	bulkWAL(t, c, 50000) // the stream is busy with it when the drive goes
	if err := s.sim.Unplug("green"); err != nil {
		t.Fatal(err)
	}
	st := s.wait("the pull recorded", func(st status.Status) bool { return st.InBox == nil })
	said := event(st, "without pressing the button")
	if said == "" {
		t.Errorf("events %+v; want the pull without the button recorded", st.Events)
	}
	bulkWAL(t, c, 20000)
	before := verified(st, blue)
	if err := s.sim.Plug("blue"); err != nil {
		t.Fatal(err)
	}
	s.wait("a full backup on the next drive", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Activity == "streaming" && verified(st, blue) > before
	})
	target, err := c.CurrentLSN(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	s.wait("WAL on the next drive up to "+target.String(), func(st status.Status) bool {
		l, err := pglogrepl.ParseLSN(st.WAL.Local.FlushedLSN)
		return err == nil && l >= target
	})
	s.stop()
	bk, err := appliance.LoadKey(filepath.Join(s.state, "box.key"))
	if err != nil {
		t.Fatal(err)
	}
	k := key{ids: []age.Identity{bk.Identity}}
	// The pulled drive: everything on it verifies and its WAL has no gap.
	(&box{t: t, dir: filepath.Join(s.sim.Dir, "green", "clinicbox"), k: k}).checkAfterKill(t)
	// The next drive: it was away while green streamed, so its WAL has
	// that hole; the new base backup after it must verify.
	rep := verifyRepo(t, filepath.Join(s.sim.Dir, "blue", "clinicbox"), k)
	if !rep.OK() || len(rep.Backups) < 2 || !rep.Backups[len(rep.Backups)-1].OK {
		t.Errorf("the next drive: problems %v, backups %+v; want the new base backup verified", rep.Problems, rep.Backups)
	}
	tr.Outcome = "recorded (" + said + "); the pulled drive's repository verifies with no WAL gap and only verifying backups listed; the next drive got a full base backup, verified, and the stream went on onto it"
}
