// Package offsitebench is the result of appliance/offsite's
// TestOffsiteBenchmark (vault step of the data path), which cmd/clinicbench
// runs and reads back: a package of its own so that the benchmark harness
// need not build the tailnet.
package offsitebench

// Result is written as JSON by the test; the field names are the contract.
type Result struct {
	Seconds float64 `json:"seconds"` // length of each measured phase
	// Steady pgbench load over the loopback tailnet, no cap.
	SteadyTPS     int     `json:"steady_tps"`
	LagP50        float64 `json:"lag_p50_s"`
	LagP99        float64 `json:"lag_p99_s"`
	LagProbes     int     `json:"lag_probes"`
	RawBytes      int64   `json:"raw_bytes"`
	SealedBytes   int64   `json:"sealed_bytes"`
	WireBytes     int64   `json:"wire_bytes"` // TCP payload both ways over the tailnet
	ClinicRate    float64 `json:"clinic_visits_per_s"`
	ClinicRawBps  float64 `json:"clinic_raw_bytes_per_s"`
	ClinicWireBps float64 `json:"clinic_wire_bytes_per_s"`
	ShapedLagP99  float64 `json:"shaped_lag_p99_s"`
	ShapedDrained float64 `json:"shaped_drained_after_s"` // after the load stopped; -1 if not within a minute
	BacklogRaw    int64   `json:"backlog_raw_bytes"`
	BacklogWire   int64   `json:"backlog_wire_bytes"`
	BacklogSecs   float64 `json:"backlog_seconds"`
}

// Week is written as JSON by TestOffsiteWeekBenchmark: a simulated clinic
// week with a daily offsite base backup through the box's spool.
type Week struct {
	DatasetMB    int     `json:"dataset_mb"`       // the clinic dataset's size asked for
	DatabaseMB   float64 `json:"database_mb"`      // pg_database_size after loading
	VisitsPerDay int     `json:"visits_per_day"`   // office-hours visits before each backup
	LinkBps      int     `json:"link_bytes_per_s"` // the uplink by day (office hours)
	// NightLinkBps is the uplink by night; DayLinkBytes is how much of
	// each upload after the seeding goes over the day link (the WAL lag
	// measured there) before the box's clock turns to night.
	NightLinkBps int   `json:"night_link_bytes_per_s"`
	DayLinkBytes int64 `json:"day_link_bytes"`
	// CapBitsPerSecond is the box's cap on base uploads (with the WAL sent
	// meanwhile) after the seeding, by day; NightCapBitsPerSecond by night.
	CapBitsPerSecond      int64   `json:"cap_bits_per_s"`
	NightCapBitsPerSecond int64   `json:"night_cap_bits_per_s"`
	Days                  []Day   `json:"days"`
	PeakRSSMiB            float64 `json:"peak_rss_mib"` // VmHWM of the whole test process
	// BoxPeakRSSMiB and BoxCPUSeconds are the box process's alone (its
	// tailnet node, shipper and spool): VmHWM and user+system CPU over
	// the week.
	BoxPeakRSSMiB float64 `json:"box_peak_rss_mib"`
	BoxCPUSeconds float64 `json:"box_cpu_s"`
	LagProbes     int     `json:"lag_probes"`
	LagP50        float64 `json:"lag_p50_s"` // commit-to-durable while base uploads ran
	LagP99        float64 `json:"lag_p99_s"`
	// ShapedLagP99 is LagP99 of the uploads' time on the day link only
	// (the seeding goes unshaped); NightLagP99 of their time on the night
	// link.
	ShapedLagP99 float64 `json:"shaped_lag_p99_s"`
	NightLagP99  float64 `json:"night_lag_p99_s"`
	// Restore is the restore from the vault after the last day.
	Restore WeekRestore `json:"restore"`
	Seconds float64     `json:"seconds"` // the whole run
}

// WeekRestore is a restore from the vault, after the week, to a time
// recorded during the last day, compared with the source as it was then.
type WeekRestore struct {
	Target string `json:"target"` // RFC 3339
	// SourceDigest and RestoredDigest digest every row of the clinic's
	// tables and the probes (count and sum of row hashes per table).
	SourceDigest   string  `json:"source_digest"`
	RestoredDigest string  `json:"restored_digest"`
	Match          bool    `json:"match"`
	Rows           int64   `json:"rows"`        // restored
	VaultBytes     int64   `json:"vault_bytes"` // the box's repository in the vault after the week
	Seconds        float64 `json:"seconds"`     // mirror, verify, restore and recovery
}

// Day is one simulated day's base backup to the vault.
type Day struct {
	Day         int     `json:"day"`
	Maintenance bool    `json:"maintenance"`  // vacuum, reindex, report table recreated that night
	Kind        string  `json:"kind"`         // full or incremental
	Stored      int64   `json:"stored_bytes"` // what the vault stores of it
	Wire        int64   `json:"wire_bytes"`   // TCP payload over the tailnet while it uploaded (WAL too)
	UploadSecs  float64 `json:"upload_s"`
	// NightSecs is the part of UploadSecs after the box's clock turned to
	// night (the rest of the upload over the night link).
	NightSecs  float64 `json:"night_upload_s"`
	Shaped     bool    `json:"shaped"`      // uploaded over the shaped link
	SpoolBytes int64   `json:"spool_bytes"` // what /perm's spool held afterwards
	BlockMap   int64   `json:"block_map_bytes"`
	PeakSpool  int64   `json:"peak_spool_bytes"` // the spool while the backup was built and uploaded
	// DrainSecs is how long the day's WAL, which the compressed day
	// writes at once, took to reach the vault before the upload began.
	DrainSecs float64 `json:"wal_drain_s"`
	// LagP50 and LagP99 are commit-to-durable while this day's backup was
	// built and uploaded over the day link (the seeding: unshaped);
	// NightLagP99 while the rest went over the night link.
	LagP50      float64 `json:"lag_p50_s"`
	LagP99      float64 `json:"lag_p99_s"`
	NightLagP99 float64 `json:"night_lag_p99_s"`
}
