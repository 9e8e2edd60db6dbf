// Package pgtest gives tests throwaway PostgreSQL clusters from pgcluster
// (server step of the data path): New starts one for a test, skips without
// PostgreSQL and stops it at the end.
//
// The names below are aliases of pgcluster's so that the many tests that
// say pgtest.Cluster or pgtest.Options need not change; programs that ship
// (the demo, the benchmark, the image smoke) import pgcluster itself and so
// do not link testing.
package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

type (
	// Cluster is a running throwaway cluster.
	Cluster = pgcluster.Cluster
	// Options tune a cluster; the zero value is a sensible test cluster.
	Options = pgcluster.Options
	// Cert is a self-signed certificate for a cluster or an impostor.
	Cert = pgcluster.Cert
	// Ask is what an Impostor asks a client for.
	Ask = pgcluster.Ask
	// Impostor poses as a PostgreSQL server.
	Impostor = pgcluster.Impostor
)

// Roles, impostor requests and constants of pgcluster.
const (
	ReplUser     = pgcluster.ReplUser
	ReplPassword = pgcluster.ReplPassword
	PlainUser    = pgcluster.PlainUser
	AskCleartext = pgcluster.AskCleartext
	AskMD5       = pgcluster.AskMD5
	AskSCRAM     = pgcluster.AskSCRAM
	AskHuge      = pgcluster.AskHuge
	HugeBody     = pgcluster.HugeBody
	Salt         = pgcluster.Salt
	ClinicSchema = pgcluster.ClinicSchema
)

// Functions of pgcluster, under their old names.
var (
	BinDir      = pgcluster.BinDir
	Start       = pgcluster.Start
	NewCert     = pgcluster.NewCert
	NewImpostor = pgcluster.NewImpostor
	ClinicVisit = pgcluster.ClinicVisit
)

// New starts a cluster for a test and stops it when the test ends. It skips
// the test (or fails it under CLINICBOX_REQUIRE_ALL=1) when PostgreSQL is
// not installed.
func New(t testing.TB, opt Options) *Cluster {
	t.Helper()
	if _, err := opt.Bin(context.Background()); err != nil {
		testenv.Skip(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}
