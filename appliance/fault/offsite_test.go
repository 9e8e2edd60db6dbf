package fault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
)

// link is the clinic's internet link under the tailnet: cut, every request
// to the vault fails as a dead uplink would.
type link struct {
	next http.RoundTripper
	down atomic.Bool
}

var errLinkDown = errors.New("fault: the clinic's internet link is down")

func (l *link) RoundTrip(r *http.Request) (*http.Response, error) {
	if l.down.Load() {
		return nil, errLinkDown
	}
	return l.next.RoundTrip(r)
}

// The offsite link is down for a simulated day while the clinic works:
// the box says the vault is unreachable, warns that the server keeps WAL
// for the vault well before the server's max_slot_wal_keep_size would
// drop it, and once the link is back the vault catches up with no gap.
func TestOffsiteDownForADay(t *testing.T) {
	const limit, warn = 256 << 20, 16 << 20
	c := pgtest.New(t, pgtest.Options{Conf: []string{fmt.Sprintf("max_slot_wal_keep_size = %dMB", limit>>20)}})
	tr := newTry(t, "offsite link down for a simulated day, then back")
	tn := tailnettest.New(t)
	vaultDir := t.TempDir()
	serveVault(t, tn.Node(t, "vault", "tag:vault"), vaultDir)
	boxNode := tn.Node(t, "box", "tag:clinicbox")
	net := &link{next: boxNode.HTTPClient().Transport}
	var ship *offsite.Shipper
	s := startService(t, c, fmt.Sprintf(`, "slot_warn_bytes": %d`, warn), func(cfg *appliance.Config) {
		key, err := appliance.LoadKey(filepath.Join(cfg.StateDir, "box.key"))
		if err != nil {
			t.Fatal(err)
		}
		ship, err = offsite.New(offsite.Config{Name: "vault", DB: c.URL(), Recipients: []string{key.Recipient()}, Signer: key.Signer, VaultURL: "http://vault:8443",
			Client: &http.Client{Transport: net}, FlushInterval: 100 * time.Millisecond, PollInterval: 200 * time.Millisecond, Now: cfg.Now}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Offsite = ship
	})
	s.enroll("blue")
	s.wait("the backup in the vault", func(st status.Status) bool { return event(st, "is in the vault.") != "" })

	net.down.Store(true)
	// A record already past the link when it went down is acknowledged
	// on the box's clock: move the clock only once the stream has stopped,
	// or that acknowledgement lands after the jump and looks recent.
	waitUntil(t, "the offsite stream to stop", time.Minute, func() bool { return !ship.Status().Connected })
	s.clock.Add(90 * time.Minute)
	s.a.Poke()
	s.wait("offsite down", func(st status.Status) bool { _, ok := condition(st, "offsite down", ""); return ok })
	// The rest of the day: the clinic keeps writing until the server
	// keeps more than the warning level for the vault.
	var said status.Condition
	var slot status.Slot
	for i := 0; said.Message == ""; i++ {
		if i == 8 {
			t.Fatalf("no slot retention warning after %d rounds of writes (slots %+v)", i, s.a.Status().Slots)
		}
		bulkWAL(t, c, 50000)
		s.clock.Add(time.Hour)
		s.a.Poke()
		st := s.wait("the server looked at", func(st status.Status) bool { return st.Time.Equal(s.clock.Now()) && st.Database.Reachable })
		said, _ = condition(st, "slot retention", "offsite vault")
		for _, sl := range st.Slots {
			if sl.Name == ship.Status().Slot {
				slot = sl
			}
		}
	}
	if slot.LimitBytes != limit || slot.RetainedBytes >= slot.LimitBytes || (slot.WALStatus != "reserved" && slot.WALStatus != "extended") || said.Severity != status.Attention {
		t.Errorf("warned with the vault's slot at %+v (%s); want a warning while the server still keeps all WAL, below its limit", slot, said.Severity)
	}
	t.Logf("warned: %s (slot %+v)", said.Message, slot)
	s.clock.Add(24*time.Hour - 90*time.Minute - time.Hour)

	net.down.Store(false)
	target, err := c.CurrentLSN(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the vault to catch up to "+target.String(), 3*time.Minute, func() bool { return ship.Status().Durable >= target },
		func() string { return ship.Status().Durable.String() })
	s.clock.Add(time.Minute)
	s.a.Poke()
	s.wait("the warnings cleared", func(st status.Status) bool {
		_, warned := condition(st, "slot retention", "offsite vault")
		_, down := condition(st, "offsite down", "")
		return st.Time.Equal(s.clock.Now()) && !warned && !down
	})
	s.stop()
	key, err := appliance.LoadKey(filepath.Join(s.state, "box.key"))
	if err != nil {
		t.Fatal(err)
	}
	gap := vaultGap(t, vaultDir, []age.Identity{key.Identity})
	if gap != "" {
		tr.Lost = gap
		t.Errorf("the vault has a gap after the catch-up: %s", gap)
	}
	tr.Outcome = fmt.Sprintf("after an hour \"offsite down\" (amber); at %s of WAL kept for the vault, below the server's %s limit (wal_status %s), \"slot retention\" warned: %q; link back: the vault caught up to the server's position, verifies with no WAL gap, and both warnings cleared",
		bytesMiB(slot.RetainedBytes), bytesMiB(slot.LimitBytes), slot.WALStatus, said.Message)
}

// vaultGap verifies the box's repository in the vault and returns its
// problems and WAL gaps ("" when none).
func vaultGap(t *testing.T, vaultDir string, ids []age.Identity) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(vaultDir, "boxes", "*", "repo"))
	if len(names) != 1 {
		t.Fatalf("the vault holds %d repositories; want 1", len(names))
	}
	repo, err := archive.OpenFirstUse(names[0])
	if err != nil {
		t.Fatal(err)
	}
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, p := range rep.Problems {
		bad = append(bad, fmt.Sprint(p))
	}
	for _, n := range rep.Notes {
		if strings.Contains(n, "no WAL from") {
			bad = append(bad, n)
		}
	}
	if len(rep.Backups) == 0 {
		bad = append(bad, "no base backup in the vault")
	}
	return strings.Join(bad, "; ")
}

func bytesMiB(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
