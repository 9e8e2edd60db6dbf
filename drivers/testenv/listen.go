package testenv

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// tcpListen is the state /proc/net/tcp gives a listening socket.
const tcpListen = 0x0A

// ListenPorts returns the TCP ports (IPv4 and IPv6, sorted, each once)
// that process pid listens on, read from /proc: the sockets among its
// open files that are in the listening state. A server started on port 0
// binds a port of its own choosing, and the test learns it here instead
// of picking a free port and hoping nothing takes it before the server
// does.
func ListenPorts(pid int) ([]int, error) {
	pfs, err := procfs.NewFS(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return nil, fmt.Errorf("listen ports of pid %d: %w", pid, err)
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return nil, fmt.Errorf("listen ports of pid %d: %w", pid, err)
	}
	inodes, err := socketInodes(p)
	if err != nil {
		return nil, fmt.Errorf("listen ports of pid %d: %w", pid, err)
	}
	// The process's own network namespace: /proc/PID/net/tcp{,6}.
	var ports []int
	for _, read := range []func() (procfs.NetTCP, error){pfs.NetTCP, pfs.NetTCP6} {
		lines, err := read()
		if errors.Is(err, iofs.ErrNotExist) { // no IPv6
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listen ports of pid %d: %w", pid, err)
		}
		for _, l := range lines {
			if l.St == tcpListen && inodes[l.Inode] {
				ports = append(ports, int(l.LocalPort))
			}
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

// socketInodes returns the inodes of the sockets among p's open files.
func socketInodes(p procfs.Proc) (map[uint64]bool, error) {
	targets, err := p.FileDescriptorTargets()
	if err != nil {
		return nil, err
	}
	inodes := map[uint64]bool{}
	for _, t := range targets {
		s, ok := strings.CutPrefix(t, "socket:[")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
			inodes[n] = true
		}
	}
	return inodes, nil
}
