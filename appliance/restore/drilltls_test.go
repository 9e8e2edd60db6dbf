package restore

import (
	"context"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// A drill of a server that runs with TLS, its certificate outside its
// data directory (as on a clinic's server) and gone where the drill runs:
// the private server starts without it, and the drill passes.
func TestDrillOfTLSServerWithoutItsCertificate(t *testing.T) {
	cert, err := pgtest.NewCert("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	c := pgtest.New(t, pgtest.Options{TLS: cert})
	if err := c.ClinicInit(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, c)
	f.sync(t, 1)
	f.stop(t)
	c.Stop() // its certificate goes with its directory
	rep, err := Drill(context.Background(), DrillOptions{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile, Signer: testSigner, FetchProgram: clinicctl})
	if err != nil || !rep.OK {
		t.Fatalf("drill: %v, %s; want it to pass", err, rep.Failure)
	}
}
