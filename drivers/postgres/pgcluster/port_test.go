package pgcluster

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// TestStartsBesideATakenPort starts a cluster whose first free port was
// taken before the server bound it, as another test run on the machine
// can: the server starts on another port and answers there.
func TestStartsBesideATakenPort(t *testing.T) {
	var opt Options
	if _, err := opt.Bin(context.Background()); err != nil {
		testenv.Skip(t, err.Error())
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	real := freePort
	defer func() { freePort = real }()
	handed := 0
	freePort = func() (int, error) {
		handed++
		if handed == 1 {
			return busy, nil
		}
		return real()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, opt)
	if err != nil {
		t.Fatalf("start with port %d taken: %v", busy, err)
	}
	defer c.Stop()
	if c.Port == busy || handed != 2 {
		t.Errorf("the server is on port %d after %d ports; want another than the taken %d, on the second", c.Port, handed, busy)
	}
	if err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}
