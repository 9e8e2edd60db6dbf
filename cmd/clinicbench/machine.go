package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
)

// machine describes where the numbers were measured.
type machine struct {
	CPU, Memory, Kernel, Disk, Go, Postgres, Load, LoadEnd string
	Cores                                                  int
}

func describeMachine(ctx context.Context, dir string, pg *pgcluster.Cluster) machine {
	m := machine{Cores: runtime.NumCPU(), CPU: "unknown", Memory: "unknown", Disk: "unknown", Go: runtime.Version()}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		kib, _ := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64)
		m.Memory = fmt.Sprintf("%.1f GiB", kib/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "df", "-hT", dir).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		m.Disk = strings.Join(strings.Fields(lines[len(lines)-1]), " ")
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	m.Load = loadAverage()
	if pg != nil {
		if out, err := pg.Command(ctx, "postgres", "--version").Output(); err == nil {
			m.Postgres = strings.TrimSpace(string(out))
		}
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load: other work on the machine
// skews the numbers.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procField returns the first "key: value" of a /proc file.
func procField(name, key string) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
