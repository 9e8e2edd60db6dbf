package main

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/clinicbox/clinicbox/appliance/vault/vaultbench"
)

// vaultScale measures one vault node serving many boxes into a bucket on
// a real S3 server (versitygw), for both meanings of the
// acknowledgement. The S3 server is a test component, so the measurement
// is a Go test in appliance/vault that this runs and reads back.
func (b *bench) vaultScale(ctx context.Context) *section {
	secs := min(int(b.cfg.liveFor.Seconds()), 30)
	boxes := "50,100,200,400"
	if b.cfg.quick {
		boxes = "10,50"
	}
	s := &section{title: "One vault node, many boxes, on S3", ref: "-", measure: "measure",
		about: fmt.Sprintf("`go test -run TestVaultScaleBenchmark ./appliance/vault`: for each number of boxes (%s), %d s with the acknowledgement meaning "+
			"fsynced on the vault node (the default) and %d s meaning stored in the bucket. One vault node with leases on, offloading every 10 s into a bucket on versitygw on loopback; "+
			"each box sends one 8 KiB sealed WAL record a second (sealed beforehand, so the senders cost next to nothing) straight to the vault's HTTP handler: "+
			"the lag is request to acknowledgement in process, without the tailnet. CPU is the test process's (vault and senders, not versitygw), per box as a share of one core; "+
			"RSS is the process's at the end of the phase; S3 requests are the vault's, per box and hour of streaming. "+
			"Then two nodes on one bucket share the boxes, half each, and one is killed halfway (its answers stop, those in flight too, and its offload); "+
			"its boxes go to the other, which takes each over once the dead node's lease runs out, and send again from its position what the bucket lacks.", boxes, secs, secs)}
	b.logf("vault-scale: running TestVaultScaleBenchmark (%s boxes, %d s per phase)", boxes, secs)
	var r vaultbench.Result
	if s.err = b.goTest(ctx, "github.com/clinicbox/clinicbox/appliance/vault", "TestVaultScaleBenchmark", "CLINICBOX_VAULT_BENCH", &r,
		"CLINICBOX_VAULT_BENCH_SECONDS="+strconv.Itoa(secs), "CLINICBOX_VAULT_BENCH_BOXES="+boxes); s.err != nil {
		return s
	}
	for _, p := range r.Phases {
		s.rows = append(s.rows, vaultRows(p, r.Seconds)...)
	}
	for _, p := range r.TwoNodes {
		s.rows = append(s.rows, twoNodeRows(p)...)
	}
	return s
}

// twoNodeRows are the rows of a phase with two vault nodes sharing the
// boxes, one killed halfway; no acknowledged WAL may be lost.
func twoNodeRows(p vaultbench.TwoNodes) []row {
	nan := math.NaN()
	name := fmt.Sprintf("%d boxes on two nodes, one killed at %.0f s of %.0f (leases %.0f s): ", p.Boxes, p.KillAt, p.Seconds, p.LeaseSeconds)
	return []row{
		values(name+"ack lag p50 before the kill (s)", "%.3f", p.LagP50Before, nan),
		values(name+"ack lag p99 before the kill (s)", "%.3f", p.LagP99Before, nan),
		values(name+"ack lag p50 after the kill (s)", "%.3f", p.LagP50After, nan),
		values(name+"ack lag p99 after the kill (s)", "%.3f", p.LagP99After, nan),
		values(name+"takeover p50 (s)", "%.1f", p.TakeoverP50, nan),
		values(name+"takeover max (s)", "%.1f", p.TakeoverMax, nan),
		atMost(name+"moved boxes never acknowledged again", "%.0f", float64(p.NotBack), nan, 0, ""),
		atMost(name+"acknowledged WAL lost (bytes)", "%.0f", float64(p.WALLost), nan, 0, "bytes"),
	}
}

// vaultRows are one phase's rows; the 1 s p99 target holds for the
// default acknowledgement.
func vaultRows(p vaultbench.Phase, secs float64) []row {
	nan := math.NaN()
	name := fmt.Sprintf("%d boxes, ack %s: ", p.Boxes, p.Ack)
	p99 := values(name+"ack lag p99 (s)", "%.3f", p.LagP99, nan)
	if p.Ack == "fsynced" {
		p99 = atMost(name+"ack lag p99 (s)", "%.3f", p.LagP99, nan, 1, "s")
	}
	box := math.Max(1, float64(p.Boxes))
	return []row{
		values(name+"records acknowledged", "%.0f", float64(p.Records), nan),
		values(name+"records refused and sent again", "%.0f", float64(p.Refused), nan),
		values(name+"ack lag p50 (s)", "%.3f", p.LagP50, nan),
		p99,
		values(name+"CPU per box (% of a core)", "%.3f", 100*p.CPUSeconds/math.Max(secs, 1e-9)/box, nan),
		values(name+"RSS per box (MiB)", "%.2f", p.RSSMiB/box, nan),
		values(name+"S3 requests per box-hour", "%.0f", float64(p.Requests)/box/math.Max(secs, 1e-9)*3600, nan),
	}
}
