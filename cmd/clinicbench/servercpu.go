package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// serverCPU is the CPU time the cluster's processes have used so far: the
// postmaster, its running children, and the children it has reaped (a
// walsender ends with its client). Differences between two readings say
// what the server spent serving one tool. Linux only; zero when unknown.
func (b *bench) serverCPU() time.Duration {
	pidText, err := os.ReadFile(filepath.Join(b.pg.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pm := strings.TrimSpace(strings.SplitN(string(pidText), "\n", 2)[0])
	var ticks int64
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		f := procStat(p)
		if len(f) < 17 {
			continue
		}
		switch {
		case f[0] == pm: // utime, stime, and reaped children's cutime, cstime
			ticks += atoi(f[13]) + atoi(f[14]) + atoi(f[15]) + atoi(f[16])
		case f[3] == pm:
			ticks += atoi(f[13]) + atoi(f[14])
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// procStat splits /proc/PID/stat into its fields, the command name (which
// may hold spaces) being one.
func procStat(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return nil
	}
	return append([]string{strings.TrimSpace(s[:open]), s[open+1 : end]}, strings.Fields(s[end+1:])...)
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
