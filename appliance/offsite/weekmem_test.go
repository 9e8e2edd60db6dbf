package offsite_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// With CLINICBOX_WEEKBOX_MEM=DIR the box process of the week benchmark
// watches its own memory: every 50 ms it reads its resident set, and each
// time that grows 2 MiB past the last record it writes, into DIR, what
// holds it then: the Go runtime's memory classes and collector state
// (runtime/metrics), the kernel's view (/proc/self/smaps_rollup and
// status) and a heap profile (inuse and alloc, peak.heap). mem.log keeps
// one line per record, so the last is the peak. A measuring aid for the
// box's memory target, not part of the benchmark's result.
const weekMemEnv = "CLINICBOX_WEEKBOX_MEM"

// weekLimitEnv sets the box process's soft memory limit, in MiB, as
// cmd/clinicbox sets the service's (96 to 128 MiB by the machine's
// memory), to measure the box under a limit; unset, the box process runs
// without one.
const weekLimitEnv = "CLINICBOX_WEEKBOX_MEMLIMIT_MIB"

// memClasses are the runtime metrics each record reports, in MiB.
var memClasses = []string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes",
	"/memory/classes/metadata/other:bytes",
	"/memory/classes/metadata/mspan/inuse:bytes",
	"/memory/classes/profiling/buckets:bytes",
	"/memory/classes/other:bytes",
	"/gc/heap/live:bytes",
	"/gc/heap/goal:bytes",
	"/gc/gomemlimit:bytes",
	"/gc/cycles/total:gc-cycles",
	"/sched/goroutines:goroutines",
}

// watchMemory starts the watch when the environment asks for it.
func watchMemory() {
	if mib, err := strconv.Atoi(os.Getenv(weekLimitEnv)); err == nil && mib > 0 {
		debug.SetMemoryLimit(int64(mib) << 20)
	}
	dir := os.Getenv(weekMemEnv)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "weekbox mem:", err)
		return
	}
	runtime.MemProfileRate = 64 << 10
	go func() {
		var last int64
		for range time.Tick(50 * time.Millisecond) {
			rss := testenv.StatusKB("VmRSS")
			if rss < last+2<<10 {
				continue
			}
			last = rss
			recordMemory(dir, rss)
		}
	}()
}

// recordMemory writes one record of what holds rss KiB.
func recordMemory(dir string, rss int64) {
	samples := make([]metrics.Sample, len(memClasses))
	for i, n := range memClasses {
		samples[i].Name = n
	}
	metrics.Read(samples)
	var line strings.Builder
	fmt.Fprintf(&line, "%s rss=%.1fMiB hwm=%.1fMiB", time.Now().UTC().Format("15:04:05.000"), float64(rss)/1024, float64(testenv.StatusKB("VmHWM"))/1024)
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			continue
		}
		v := s.Value.Uint64()
		name := strings.TrimPrefix(strings.TrimPrefix(s.Name, "/memory/classes/"), "/")
		if strings.HasSuffix(s.Name, ":bytes") {
			fmt.Fprintf(&line, " %s=%.1f", name, float64(v)/(1<<20))
		} else {
			fmt.Fprintf(&line, " %s=%d", name, v)
		}
	}
	appendFile(filepath.Join(dir, "mem.log"), line.String()+"\n")
	rollup, _ := os.ReadFile("/proc/self/smaps_rollup")
	status, _ := os.ReadFile("/proc/self/status")
	os.WriteFile(filepath.Join(dir, "peak.proc"), append(append(rollup, '\n'), status...), 0o644)
	var prof bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&prof, 0); err == nil {
		os.WriteFile(filepath.Join(dir, "peak.heap"), prof.Bytes(), 0o644)
	}
}

func appendFile(path, s string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	f.WriteString(s)
	f.Close()
}
