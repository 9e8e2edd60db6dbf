// Package vaultbench is the result of appliance/vault's
// TestVaultScaleBenchmark (vault step of the data path), which
// cmd/clinicbench runs and reads back: a package of its own so that the
// benchmark harness need not build the vault's tests.
package vaultbench

// Result is written as JSON by the test; the field names are the contract.
type Result struct {
	Seconds        float64 `json:"seconds"`         // length of each phase
	RecordBytes    int     `json:"record_bytes"`    // raw WAL bytes per record
	RecordsPerSec  float64 `json:"records_per_s"`   // per box
	OffloadSeconds float64 `json:"offload_seconds"` // the offload interval
	Phases         []Phase `json:"phases"`
}

// Phase is one number of boxes with one meaning of the acknowledgement.
type Phase struct {
	Boxes int `json:"boxes"`
	// Ack is "fsynced" (on the vault node) or "stored" (in the bucket).
	Ack     string  `json:"ack"`
	Records int     `json:"records"` // acknowledged
	Refused int     `json:"refused"` // answered with an error, sent again
	LagP50  float64 `json:"lag_p50_s"`
	LagP99  float64 `json:"lag_p99_s"`
	// CPUSeconds is the vault process's user and system time over the
	// phase (the in-process senders included; the S3 server not).
	CPUSeconds float64 `json:"cpu_s"`
	RSSMiB     float64 `json:"rss_mib"` // the process's VmRSS at the phase's end
	// Requests is the S3 requests the vault made in the phase.
	Requests int64 `json:"requests"`
}
