package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// relayMain is "clinicimage relay HOST:PORT", the command qemu runs for
// each connection the smoke's guest opens to a forwarded host service (see
// guestForward): it joins its standard input and output, qemu's end of the
// guest's connection, to a new TCP connection to HOST:PORT. It prints
// nothing, since its standard error is that connection too, and returns
// the exit code.
func relayMain(args []string) int {
	if len(args) != 1 {
		return 2
	}
	// qemu's user network spawns the relay through GLib, which forks
	// twice so that init, not qemu, is its parent: it cannot die with its
	// parent. It ends instead when qemu closes its input, which qemu's
	// exit does too, or when the service closes the connection.
	conn, err := net.DialTimeout("tcp", args[0], 10*time.Second)
	if err != nil {
		return 1
	}
	defer conn.Close()
	if relay(conn.(*net.TCPConn), os.Stdin, os.Stdout) != nil {
		return 1
	}
	return 0
}

// relay copies in to conn and conn to out until the service closes the
// connection. When in ends (the guest closed its side), conn's write side
// is closed so that the service sees the end too and answers with its own.
func relay(conn *net.TCPConn, in io.Reader, out io.Writer) error {
	go func() {
		io.Copy(conn, in)
		conn.CloseWrite()
	}()
	_, err := io.Copy(out, conn)
	return err
}

// relaysLeft returns the process IDs of relays to addr that still run,
// after waiting up to d for them to end. Their command line is
// clinicimage's (self) with "relay" and addr; /proc is where they are
// found, since they are nobody's children here.
func relaysLeft(self, addr string, d time.Duration) []int {
	want := strings.Join([]string{self, "relay", addr}, "\x00") + "\x00"
	var left []int
	for end := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		left = left[:0]
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			if b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline")); err == nil && string(b) == want && running(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(end) {
			return left
		}
	}
}
