package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
)

// The service's soft memory limit is a sixteenth of the machine's memory,
// kept between these: about 115 MiB on a 2 GB Pi, which must also run a
// restore drill's PostgreSQL. Without a limit Go lets its heap grow to
// twice what was live at the last collection, and the service's peaks (a
// verification holds two 16 MiB WAL segments, tsnet keeps about 32 MiB of
// packet buffers) took its resident memory to 300-470 MiB.
const (
	minMemoryLimit = 96 << 20
	maxMemoryLimit = 128 << 20
)

// setMemoryLimit sets the runtime's soft memory limit from /proc/meminfo
// unless GOMEMLIMIT is set (then the runtime already took it), and says
// which it is.
func setMemoryLimit(log *slog.Logger) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit from GOMEMLIMIT", "limit", v)
		return
	}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		log.Warn("no memory limit: cannot read the machine's memory", "err", err)
		return
	}
	limit, err := memoryLimit(b)
	if err != nil {
		log.Warn("no memory limit", "err", err)
		return
	}
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "limit_mib", limit>>20)
}

// memoryLimit derives the limit from the text of /proc/meminfo.
func memoryLimit(meminfo []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 || string(f[0]) != "MemTotal:" {
			continue
		}
		kib, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil || kib <= 0 {
			return 0, fmt.Errorf("memory limit: MemTotal %q is not a size in kB", f[1])
		}
		return min(max(kib<<10/16, minMemoryLimit), maxMemoryLimit), nil
	}
	return 0, fmt.Errorf("memory limit: /proc/meminfo has no MemTotal")
}
