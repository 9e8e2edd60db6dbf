package storetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// versitygw is started on port 0 and binds its port itself; the address
// the tests use is the one the process listens on, and a restart gets the
// same port back.
func TestVersityGWOwnsItsPort(t *testing.T) {
	s := StartVersityGW(t, Options{})
	for i, want := range []string{"127.0.0.1:0", s.Addr} {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		ports, err := testenv.ListenPorts(s.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(s.Addr)
		if len(ports) != 1 || strconv.Itoa(ports[0]) != port {
			t.Errorf("versitygw listens on %v; want only the port of its address %s", ports, s.Addr)
		}
		if exists, err := s.client().BucketExists(context.Background(), s.Bucket); err != nil || !exists {
			t.Errorf("bucket %s at %s: got %v, %v; want it there", s.Bucket, s.Addr, exists, err)
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		t.Logf("versitygw %q on %s", args[1:], s.Addr)
		if args[2] != want {
			t.Errorf("start %d: versitygw got --port %q; want %q (port 0 at first, then its own address again)", i+1, args[2], want)
		}
		s.Kill()
		s.Start()
	}
}
