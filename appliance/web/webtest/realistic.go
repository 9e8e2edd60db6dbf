package webtest

import (
	"math"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
	gb   = int64(1) << 30
	mb   = int64(1) << 20
)

// swapTime is when Son went in: a week and three hours ago, so its swap
// is three hours overdue.
func swapTime(now time.Time) time.Time { return now.Add(-week - 3*time.Hour) }

// realistic is the status document of a box a month into service.
func realistic(now time.Time) status.Status {
	t0 := swapTime(now)
	swapMsg := "Swap the backup drive: press the button to eject Son, then put in Father from the safe."
	return status.Status{
		Time:     now,
		Box:      status.Box{Hostname: "clinicbox", Version: "v0.9.0", Started: now.Add(-8 * day), ClockTrusted: true, Setup: "ok"},
		Severity: status.Attention,
		Headline: swapMsg,
		Conditions: []status.Condition{
			{Name: "swap due", Severity: status.Attention, Drive: string(IDs["Son"]), Since: now.Add(-3 * time.Hour), Message: swapMsg},
			{Name: "drive warning", Severity: status.Attention, Drive: string(IDs["Grandfather"]), Since: t0, Message: "Grandfather reports 8 reallocated sectors; it still works, but plan to replace it."},
		},
		Panel: status.Panel{Green: "steady", Amber: "slow", Red: "off", Buzzer: "two beeps every 30 minutes", Condition: "swap due"},
		Drives: []status.Drive{
			{ID: string(IDs["Son"]), Generation: "Son", Where: "in box", Serial: "WX12A3B4C5D6", Capacity: 2000 * gb, Used: 412 * gb, InsertedAt: t0, LastBackup: now.Add(-2 * time.Hour),
				Health: status.Health{Verdict: status.VerdictOK, Temperature: 38, Checked: now.Add(-time.Hour)}},
			{ID: string(IDs["Father"]), Generation: "Father", Where: "offsite", Expected: true, Serial: "WX98Z7Y6X5W4", Capacity: 2000 * gb, Used: 405 * gb, AwaySince: t0.Add(-week), LastBackup: t0.Add(-week - 10*time.Minute),
				Health: status.Health{Verdict: status.VerdictOK, Temperature: 36, Checked: t0.Add(-week)}},
			{ID: string(IDs["Grandfather"]), Generation: "Grandfather", Where: "offsite", Serial: "S3Z9NB0K123456", Capacity: 2000 * gb, Used: 398 * gb, AwaySince: t0, LastBackup: t0.Add(-5 * time.Minute),
				Health: status.Health{Verdict: status.VerdictWarning, Reasons: []string{"reallocated sectors: 8 (0 a month ago)"}, Temperature: 41, Checked: t0}},
		},
		InBox:    &status.InBox{Drive: string(IDs["Son"]), Generation: "Son", Decision: "accepted", Writable: true, Activity: status.Streaming},
		Expected: "Father",
		Swap:     status.Swap{DueAt: now.Add(-3 * time.Hour), Due: true},
		Backups: []status.Backup{
			{ID: "20261121T0100-son", Drive: string(IDs["Son"]), Generation: "Son", Start: now.Add(-2*time.Hour - 11*time.Minute), End: now.Add(-2 * time.Hour), Bytes: 9 * gb, Verified: "ok", VerifiedAt: now.Add(-110 * time.Minute)},
			{ID: "20261120T2300-vault", Start: now.Add(-26*time.Hour - 40*time.Minute), End: now.Add(-26 * time.Hour), Bytes: 9 * gb, Verified: "ok", VerifiedAt: now.Add(-25 * time.Hour)},
			{ID: "20261114T1040-son", Drive: string(IDs["Son"]), Generation: "Son", Start: t0.Add(2 * time.Minute), End: t0.Add(14 * time.Minute), Bytes: 9 * gb, Verified: "ok", VerifiedAt: t0.Add(25 * time.Minute)},
			{ID: "20261114T0950-grandfather", Drive: string(IDs["Grandfather"]), Generation: "Grandfather", Start: t0.Add(-17 * time.Minute), End: t0.Add(-5 * time.Minute), Bytes: 9 * gb, Verified: "ok", VerifiedAt: t0.Add(-time.Minute)},
		},
		Drills: []status.Drill{{Time: now.Add(-3 * day), Drive: string(IDs["Son"]), OK: true, RTO: 412, RPO: 38}},
		WAL:    status.WAL{ServerLSN: "3/5A1C2F88", Local: status.Lag{Streaming: true, FlushedLSN: "3/5A1BE000", Bytes: 20360, Seconds: 1.2, LastFlush: now.Add(-time.Second)}},
		Slots: []status.Slot{
			{Name: "clinicbox_son", Exists: true, Active: true, WALStatus: "reserved", RetainedBytes: 48 * mb, LimitBytes: 20 * gb},
			{Name: "clinicbox_vault", Exists: true, Active: true, WALStatus: "reserved", RetainedBytes: 96 * mb, LimitBytes: 20 * gb},
		},
		Offsite: []status.Offsite{{Name: "vault", Connected: true, Lag: status.Lag{Streaming: true, Bytes: 2 * mb, Seconds: 14, LastFlush: now.Add(-14 * time.Second)},
			BacklogBytes: 2 * mb, LastBaseBackup: now.Add(-26 * time.Hour), Window: status.Range{From: now.Add(-30 * day), To: now.Add(-14 * time.Second)}}},
		Window: status.Window{
			Local:   status.Range{From: now.Add(-28 * day), To: now.Add(-time.Second)},
			Offsite: status.Range{From: now.Add(-30 * day), To: now.Add(-14 * time.Second)},
		},
		Events: []status.Event{
			{Time: now.Add(-3 * time.Hour), Kind: "swap due", Message: swapMsg},
			{Time: now.Add(-110 * time.Minute), Kind: "verify", Message: "Last night's backup onto Son verified: 9.0 GiB, 1,912 files."},
			{Time: now.Add(-3 * day), Kind: "drill", Message: "Restore drill passed: restored in 6m52s, 38 s of data would have been lost."},
		},
		Database: status.Database{Target: "db.clinic.lan:5432 (clinic)", Reachable: true, SystemID: "7301234567890123456", Version: 15},
		Maint:    status.Maintenance{LastRun: now.Add(-5 * day), Result: "VACUUM ANALYZE on 42 tables in 3m12s; nothing needed REINDEX."},
	}
}

// custodyHistory is five weekly swaps before now, one of them with a
// wrong drive put in first and one pulled without ejecting.
func custodyHistory(now time.Time) []rotation.Entry {
	t0 := swapTime(now)
	start := t0.Add(-5*week - day)
	var out []rotation.Entry
	add := func(t time.Time, gen, ev string, dec rotation.Kind, reason string) {
		out = append(out, rotation.Entry{Time: t, Drive: IDs[gen], Generation: gen, Event: ev, Who: "Maria", Decision: dec, Reasons: []string{reason}})
	}
	for i, gen := range []string{"Son", "Father", "Grandfather"} {
		add(start.Add(time.Duration(i)*time.Minute), gen, string(rotation.Enroll), rotation.Enrolled, "new drive enrolled as "+gen)
	}
	order := []string{"Father", "Grandfather", "Son", "Father", "Grandfather", "Son"}
	for i, gen := range order {
		t := t0.Add(-time.Duration(len(order)-1-i) * week)
		if i > 0 {
			prev := order[i-1]
			if i == 3 {
				add(t.Add(-time.Minute), prev, string(rotation.Remove), rotation.Pulled, "pulled out without ejecting first")
			} else {
				add(t.Add(-time.Minute), prev, string(rotation.Remove), rotation.Ejected, "ejected with the button")
			}
		}
		if i == 4 {
			add(t, "Son", string(rotation.Insert), rotation.WrongDrive, "Grandfather was expected, not Son")
			add(t.Add(2*time.Minute), "Son", string(rotation.Remove), rotation.Ejected, "taken out again")
			t = t.Add(4 * time.Minute)
		}
		add(t, gen, string(rotation.Insert), rotation.Accepted, gen+" is the drive expected next")
	}
	return out
}

// lagHistory is a week of lag samples, one a minute: the local copy a
// second or two behind with a bump in office hours, the offsite copy
// fifteen seconds behind with a 40-minute outage of the link last night.
func lagHistory(now time.Time) []status.Sample {
	var out []status.Sample
	outage := now.Add(-14 * time.Hour)
	for t := now.Add(-week); !t.After(now); t = t.Add(time.Minute) {
		h := float64(t.Hour()) + float64(t.Minute())/60
		local := 1.2 + 0.6*math.Sin(float64(t.Unix())/900)
		if h >= 8 && h < 18 {
			local += 2.5 + 1.5*math.Sin(h)
		}
		off := 12 + 4*math.Sin(float64(t.Unix())/1300) + local
		if d := t.Sub(outage); d >= 0 && d < 40*time.Minute {
			off += d.Seconds()
		}
		out = append(out, status.Sample{Time: t, LocalSeconds: local, OffsiteSeconds: off, RetainedBytes: 48 * mb})
	}
	return out
}
