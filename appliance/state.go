package appliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/durable"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// book is what the box remembers besides the rotation: the history the
// status document shows. It is advisory; the repositories on the drives
// are the truth about backups.
type book struct {
	Backups []status.Backup `json:"backups"`
	Drills  []status.Drill  `json:"drills,omitempty"`
	Events  []status.Event  `json:"events"`
	// Nightly is the day of the last nightly backup per drive.
	Nightly map[rotation.DriveID]rotation.Date `json:"nightly,omitempty"`
	// Health is each drive's last SMART check.
	Health map[rotation.DriveID]status.Health `json:"health,omitempty"`
	// HealthLog is each drive's SMART checks over time, oldest first.
	HealthLog map[rotation.DriveID][]status.HealthSample `json:"health_log,omitempty"`
	// Maint is the last maintenance run.
	Maint status.Maintenance `json:"maintenance,omitzero"`
	// Consent is when the remote-support window ends.
	Consent time.Time `json:"consent,omitzero"`
	// RowCounts are the server's row counts at each drive's last backup,
	// for its drills to compare with.
	RowCounts map[rotation.DriveID]rowCounts `json:"row_counts,omitempty"`
}

const (
	keepBackups = 60
	keepEvents  = 100
	// keepHealth is a drive's SMART trend: at one check every six hours
	// while in the box, a drive's last few months of rotation.
	keepHealth = 120
)

func (a *Appliance) path(name string) string { return filepath.Join(a.cfg.StateDir, name) }

// load reads the rotation state, the custody log (checking its chain) and
// the book. Damage to any of them is reported, never a reason not to
// start: the box keeps backing up.
func (a *Appliance) load() error {
	if b, err := os.ReadFile(a.path("box.json")); err == nil {
		if err := json.Unmarshal(b, &a.book); err != nil {
			a.book = book{}
			a.damaged("state", a.setAside("box.json", fmt.Sprintf("The box's history is damaged (%v): it starts empty", err)))
		}
	}
	if b, err := os.ReadFile(a.path("rotation.json")); err == nil {
		if err := json.Unmarshal(b, &a.rot); err != nil {
			a.rot = rotation.State{}
			a.damaged("rotation", a.setAside("rotation.json", fmt.Sprintf("The rotation state is damaged (%v): the box starts with no drives enrolled", err)))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("appliance: %w", err)
	}
	entries, err := a.readCustody()
	if err != nil {
		return fmt.Errorf("appliance: custody log: %w", err)
	}
	keys := a.key.LogKeys()
	for _, p := range rotation.Check(entries, keys, nil) {
		if p.Fault() {
			// Keep running: the log is evidence, and a broken chain is
			// itself something to report, not a reason to stop backing up.
			a.damaged("custody", "The custody log has been altered: "+p.Reason)
		}
	}
	a.custody = rotation.Continue(entries, keys)
	if a.book.Nightly == nil {
		a.book.Nightly = map[rotation.DriveID]rotation.Date{}
	}
	a.consent = a.book.Consent
	return nil
}

// damaged reports damage found in the box's own files.
func (a *Appliance) damaged(kind, msg string) {
	a.log.Error(msg, "op", kind)
	a.book.Events = append(a.book.Events, status.Event{Time: a.cfg.Now(), Kind: kind, Message: msg})
}

// setAside renames a damaged state file so that it is kept for a look but
// not read again, and returns msg saying where it went.
func (a *Appliance) setAside(name, msg string) string {
	kept := a.path(name + ".damaged")
	if err := os.Rename(a.path(name), kept); err != nil {
		return fmt.Sprintf("%s; it could not be set aside: %v.", msg, err)
	}
	return fmt.Sprintf("%s; the damaged file is kept as %s.", msg, kept)
}

// readCustody reads the custody log, reporting the lines it skips, and
// ends a line torn by a power cut so that the next entry starts its own.
func (a *Appliance) readCustody() ([]rotation.Entry, error) {
	f, err := os.OpenFile(a.path("custody.jsonl"), os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, bad, err := rotation.ReadLog(f)
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		a.damaged("custody", "The custody log's "+b.String())
	}
	if _, err := audit.EndLine(f); err != nil {
		return nil, err
	}
	return entries, nil
}

// Custody returns the custody log.
func (a *Appliance) Custody() ([]rotation.Entry, error) {
	f, err := os.Open(a.path("custody.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, _, err := rotation.ReadLog(f) // load reported the lines it skips
	return entries, err
}

// CustodySealer checks the custody log's signatures (and the seals of
// entries written before it was signed).
func (a *Appliance) CustodySealer() chain.Sealer { return a.key.LogKeys() }

// decide applies a rotation event, records it in the custody log and saves
// the state, in that order: the log never misses a movement the state shows.
func (a *Appliance) decide(ev rotation.Event) rotation.Decision {
	now := a.cfg.Now()
	next, dec := a.policy.Decide(a.rot, ev, now)
	if dec.Kind == rotation.Rejected {
		return dec
	}
	e := a.custody.Append(rotation.EntryFor(ev, dec, now))
	if err := a.appendCustody(e); err != nil {
		a.log.Error("custody log not written", "err", err)
	}
	a.rot = next
	a.saveRotation()
	for _, r := range dec.Reasons {
		a.event(string(ev.Kind), r)
	}
	return dec
}

func (a *Appliance) appendCustody(e rotation.Entry) error {
	f, err := os.OpenFile(a.path("custody.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := rotation.WriteEntries(f, e); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (a *Appliance) saveRotation() {
	b, err := rotation.MarshalState(a.rot)
	if err == nil {
		err = durable.WriteFile(a.path("rotation.json"), b, 0o600)
	}
	if err != nil {
		a.log.Error("rotation state not saved", "err", err)
	}
}

func (a *Appliance) saveBook() {
	a.book.Consent = a.consent
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.Encode(a.book)
	if err := durable.WriteFile(a.path("box.json"), buf.Bytes(), 0o600); err != nil {
		a.log.Error("box state not saved", "err", err)
	}
}

// event adds to the recent-events list and the log.
func (a *Appliance) event(kind, msg string) {
	a.log.Info(msg, "op", kind)
	a.book.Events = append(a.book.Events, status.Event{Time: a.cfg.Now(), Kind: kind, Message: msg})
	if n := len(a.book.Events); n > keepEvents {
		a.book.Events = a.book.Events[n-keepEvents:]
	}
	a.saveBook()
}

// recordBackup adds or updates a backup in the book.
func (a *Appliance) recordBackup(b status.Backup) {
	for i := range a.book.Backups {
		if a.book.Backups[i].ID == b.ID && a.book.Backups[i].Drive == b.Drive {
			a.book.Backups[i] = b
			a.saveBook()
			return
		}
	}
	a.book.Backups = append(a.book.Backups, b)
	if n := len(a.book.Backups); n > keepBackups {
		a.book.Backups = a.book.Backups[n-keepBackups:]
	}
	a.saveBook()
}

func (b *book) health(id rotation.DriveID) status.Health {
	if h, ok := b.Health[id]; ok {
		return h
	}
	return status.Health{Verdict: status.VerdictUnknown}
}

// setHealth keeps the drive's latest check and adds it to its trend once;
// it reports whether the trend grew.
func (b *book) setHealth(id rotation.DriveID, h status.Health) bool {
	if b.Health == nil {
		b.Health = map[rotation.DriveID]status.Health{}
	}
	b.Health[id] = h
	if h.Checked.IsZero() || h.Verdict == status.VerdictUnknown {
		return false
	}
	if b.HealthLog == nil {
		b.HealthLog = map[rotation.DriveID][]status.HealthSample{}
	}
	log := b.HealthLog[id]
	if n := len(log); n > 0 && !h.Checked.After(log[n-1].Time) {
		return false
	}
	log = append(log, status.HealthSample{Time: h.Checked, Verdict: h.Verdict, Temperature: h.Temperature, BadSectors: h.BadSectors})
	if n := len(log); n > keepHealth {
		log = log[n-keepHealth:]
	}
	b.HealthLog[id] = log
	return true
}
