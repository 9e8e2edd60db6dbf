package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// statusCollector turns the status document into gauges at every scrape,
// so metrics never disagree with the pages.
type statusCollector struct {
	box Box
	now func() time.Time
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("clinicbox_"+name, help, labels, nil)
}

var (
	descSeverity   = desc("severity", "Most severe current condition: 0 good, 1 busy, 2 attention, 3 failure.")
	descCondition  = desc("condition", "A current condition (always 1), by name and severity.", "name", "severity")
	descSwapDue    = desc("swap_due", "1 when the drive in the box should be swapped.")
	descLagSeconds = desc("wal_lag_seconds", "How far a copy of the WAL is behind the server, in seconds.", "copy")
	descLagBytes   = desc("wal_lag_bytes", "How far a copy of the WAL is behind the server, in bytes.", "copy")
	descStreaming  = desc("wal_streaming", "1 while a copy of the WAL is streaming.", "copy")
	descRetained   = desc("slot_retained_bytes", "WAL the server keeps for a replication slot.", "slot")
	descSlotLimit  = desc("slot_limit_bytes", "The server's max_slot_wal_keep_size; 0 when unlimited.", "slot")
	descHealth     = desc("drive_health", "A drive's SMART verdict: 0 ok, 1 warning, 2 failing, -1 unknown.", "drive", "generation")
	descTemp       = desc("drive_temperature_celsius", "A drive's temperature at its last SMART check.", "drive", "generation")
	descUsed       = desc("drive_used_bytes", "Bytes used on a drive.", "drive", "generation")
	descCapacity   = desc("drive_capacity_bytes", "A drive's capacity.", "drive", "generation")
	descBackupAge  = desc("last_backup_age_seconds", "Seconds since the end of the last base backup.", "where")
	descVerified   = desc("last_verified_backup_age_seconds", "Seconds since the end of the last base backup that verified.", "where")
	descWindow     = desc("recoverable_window_start_seconds", "Start of the recoverable window, as a Unix time; 0 when there is none.", "where")
	descDrill      = desc("last_drill_ok", "1 when the last restore drill passed.")
	descDriveDrill = desc("drive_last_drill_ok", "1 when the drive's last restore drill passed.", "drive")
	descDrillAge   = desc("drive_last_drill_age_seconds", "Seconds since the drive's last restore drill.", "drive")
	descConsent    = desc("support_consent_open", "1 while the front desk's support window is open.")
	descDatabase   = desc("database_reachable", "1 when the clinic's PostgreSQL server answers.")
)

var allDescs = []*prometheus.Desc{descSeverity, descCondition, descSwapDue, descLagSeconds, descLagBytes, descStreaming,
	descRetained, descSlotLimit, descHealth, descTemp, descUsed, descCapacity, descBackupAge, descVerified, descWindow,
	descDrill, descDriveDrill, descDrillAge, descConsent, descDatabase}

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// verdictValue is the health gauge's value: -1 when the drive cannot be
// asked.
func verdictValue(v status.Verdict) float64 {
	switch v {
	case status.VerdictOK:
		return 0
	case status.VerdictWarning:
		return 1
	case status.VerdictFailing:
		return 2
	case status.VerdictUnknown:
	}
	return -1
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st, now := c.box.Status(), c.now()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(descSeverity, float64(st.Severity))
	for _, cond := range st.Conditions {
		g(descCondition, 1, cond.Name, cond.Severity.String())
	}
	g(descSwapDue, b2f(st.Swap.Due))
	lag := func(name string, l status.Lag) {
		g(descLagSeconds, l.Seconds, name)
		g(descLagBytes, float64(l.Bytes), name)
		g(descStreaming, b2f(l.Streaming), name)
	}
	lag("local", st.WAL.Local)
	for _, o := range st.Offsite {
		lag("offsite:"+o.Name, o.Lag)
	}
	for _, sl := range st.Slots {
		g(descRetained, float64(sl.RetainedBytes), sl.Name)
		g(descSlotLimit, float64(sl.LimitBytes), sl.Name)
	}
	for _, d := range st.Drives {
		g(descHealth, verdictValue(d.Health.Verdict), d.ID, d.Generation)
		if d.Health.Temperature != 0 {
			g(descTemp, float64(d.Health.Temperature), d.ID, d.Generation)
		}
		if d.Capacity > 0 {
			g(descUsed, float64(d.Used), d.ID, d.Generation)
			g(descCapacity, float64(d.Capacity), d.ID, d.Generation)
		}
	}
	for _, where := range []string{"local", "offsite"} {
		if last, ok := lastBackup(st.Backups, where, false); ok {
			g(descBackupAge, now.Sub(last).Seconds(), where)
		}
		if last, ok := lastBackup(st.Backups, where, true); ok {
			g(descVerified, now.Sub(last).Seconds(), where)
		}
	}
	g(descWindow, unixOrZero(st.Window.Local.From), "local")
	g(descWindow, unixOrZero(st.Window.Offsite.From), "offsite")
	if n := len(st.Drills); n > 0 {
		g(descDrill, b2f(latestDrill(st.Drills).OK))
	}
	for _, d := range status.LatestDrills(st.Drills) {
		g(descDriveDrill, b2f(d.OK), d.Drive)
		g(descDrillAge, now.Sub(d.Time).Seconds(), d.Drive)
	}
	g(descConsent, b2f(st.Support.ConsentUntil.After(now)))
	g(descDatabase, b2f(st.Database.Reachable))
}

// lastBackup returns the end of the newest backup kept locally (on a
// drive) or offsite, optionally only among those that verified.
func lastBackup(bs []status.Backup, where string, verified bool) (time.Time, bool) {
	var last time.Time
	for _, b := range bs {
		if (where == "offsite") != (b.Drive == "") || (verified && b.Verified != status.VerifiedOK) {
			continue
		}
		if b.End.After(last) {
			last = b.End
		}
	}
	return last, !last.IsZero()
}

func latestDrill(ds []status.Drill) status.Drill {
	d := ds[0]
	for _, x := range ds[1:] {
		if x.Time.After(d.Time) {
			d = x
		}
	}
	return d
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixOrZero(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.Unix())
}

// newMetrics serves the status gauges from a private registry, so nothing
// else in the process leaks into the box's metrics.
func newMetrics(box Box, now func() time.Time) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(statusCollector{box: box, now: now})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
