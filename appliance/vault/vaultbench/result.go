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
	// TwoNodes are the phases with two vault nodes, one killed halfway.
	TwoNodes []TwoNodes `json:"two_nodes,omitempty"`
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

// TwoNodes is a phase in which two vault nodes on one bucket share the
// boxes, half each, and one of them is killed halfway: its boxes move to
// the other, which takes each over once the dead node's lease on it runs
// out.
type TwoNodes struct {
	Boxes        int     `json:"boxes"`
	Ack          string  `json:"ack"`
	Seconds      float64 `json:"seconds"`   // the phase's length
	KillAt       float64 `json:"kill_at_s"` // when the node was killed
	LeaseSeconds float64 `json:"lease_s"`
	Moved        int     `json:"moved"`   // boxes of the killed node
	Records      int     `json:"records"` // acknowledged, resent ones included
	Refused      int     `json:"refused"` // answered with an error or not at all
	// The ack lag of records sent before the kill, and after it (every
	// box, the moved ones on the surviving node).
	LagP50Before float64 `json:"lag_p50_before_s"`
	LagP99Before float64 `json:"lag_p99_before_s"`
	LagP50After  float64 `json:"lag_p50_after_s"`
	LagP99After  float64 `json:"lag_p99_after_s"`
	// Takeover is from the kill to a moved box's first acknowledgement
	// by the surviving node.
	TakeoverP50 float64 `json:"takeover_p50_s"`
	TakeoverMax float64 `json:"takeover_max_s"`
	NotBack     int     `json:"not_back"` // moved boxes never acknowledged again
	// WALLost is the acknowledged WAL bytes the bucket lacks at the end,
	// after the surviving node's last offload: must be 0.
	WALLost  int64 `json:"wal_lost_bytes"`
	Requests int64 `json:"requests"` // S3 requests of both nodes
}
