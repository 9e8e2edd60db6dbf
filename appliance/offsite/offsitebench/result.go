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
