package appliance

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/status"
)

// fakeVault is an Offsite that is never connected and records uploads.
type fakeVault struct {
	mu      sync.Mutex
	uploads []string
	since   time.Time
	full    bool // the vault refuses WAL: the practice's quota is used up
}

func (f *fakeVault) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeVault) Status() offsite.Status {
	if f.full {
		return offsite.Status{Destination: "home", LastDurable: f.since, VaultFull: true, LastErrorTime: f.since,
			LastError: "offsite: vault answered 507 (quota): vault: the vault is full for this practice: ask the vault's operator to raise the quota"}
	}
	return offsite.Status{Destination: "home", LastDurable: f.since, LastError: "dial tcp: no route to host"}
}
func (f *fakeVault) Due(time.Time) (bool, string) { return true, "none in the vault yet" }
func (f *fakeVault) UploadBackup(ctx context.Context, repoDir, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads = append(f.uploads, id)
	return nil
}

// A verified backup goes to the vault when one is due, and a vault out of
// reach for over an hour turns the panel amber.
func TestOffsiteUploadAndDown(t *testing.T) {
	start := time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago"))
	v := &fakeVault{since: start}
	r := newRig(t, start, func(c *Config) { c.Offsite = v })
	r.enroll("blue")
	st := r.wait("upload recorded", func(st status.Status) bool {
		for _, e := range st.Events {
			if e.Kind == "offsite" && len(e.Message) > 0 && e.Message[len(e.Message)-len("is in the vault."):] == "is in the vault." {
				return true
			}
		}
		return false
	})
	v.mu.Lock()
	if len(v.uploads) != 1 || v.uploads[0] != st.Backups[len(st.Backups)-1].ID {
		t.Errorf("uploads %v; want the verified backup %s", v.uploads, st.Backups[len(st.Backups)-1].ID)
	}
	v.mu.Unlock()
	if hasCondition(st, "offsite down") {
		t.Errorf("offsite down before an hour passed")
	}
	r.at(start, 8, 30)
	st = r.wait("offsite down", func(st status.Status) bool { return hasCondition(st, "offsite down") })
	if len(st.Offsite) != 1 || st.Offsite[0].Connected {
		t.Errorf("offsite status %+v", st.Offsite)
	}
}

// A full vault is not an unreachable one: staff are told at once whom to
// ask, not to check the internet link.
func TestOffsiteVaultFull(t *testing.T) {
	now := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	a := &Appliance{cfg: Config{Offsite: &fakeVault{since: now, full: true}}, started: now}
	conds := a.offsiteStatus(&status.Status{}, now.Add(time.Minute))
	if len(conds) != 1 || conds[0].Name != "offsite vault full" || !strings.Contains(conds[0].Message, "ask the vault's operator to raise the quota") {
		t.Errorf("got %+v; want one condition, offsite vault full, naming the vault's operator", conds)
	}
}
