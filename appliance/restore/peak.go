package restore

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
)

// peakEvery is how often a drill samples its PostgreSQL's memory.
const peakEvery = 500 * time.Millisecond

// peakSampler follows the memory of a drill's PostgreSQL: every process
// under its postmaster (restore_command's included), private memory
// summed and shared memory counted once, so shared_buffers touched by
// every backend is not counted once per backend. The kernel keeps no peak
// for a group of processes without a cgroup of their own, so this is the
// largest of samples taken every peakEvery.
type peakSampler struct {
	pgdata string
	stop   chan struct{}
	done   chan struct{}
	// mu guards peak.
	mu   sync.Mutex
	peak int64
}

func samplePeak(pgdata string) *peakSampler {
	p := &peakSampler{pgdata: pgdata, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *peakSampler) run() {
	defer close(p.done)
	tick := time.NewTicker(peakEvery)
	defer tick.Stop()
	for {
		p.sample()
		select {
		case <-tick.C:
		case <-p.stop:
			return
		}
	}
}

func (p *peakSampler) sample() {
	pid, err := pgbin.PostmasterPID(p.pgdata)
	if err != nil {
		return // not started yet, or stopped
	}
	var private, shared int64
	for _, q := range append(descendants(pid), pid) {
		anon, file, shmem := processRSS(q)
		private += anon + file
		shared = max(shared, shmem)
	}
	p.mu.Lock()
	p.peak = max(p.peak, private+shared)
	p.mu.Unlock()
}

// finish takes a last sample and returns the peak in bytes.
func (p *peakSampler) finish() int64 {
	p.sample()
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// descendants lists the processes below pid, from each process's parent
// in /proc/PID/stat.
func descendants(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	children := map[int][]int{}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		parent, _ := strconv.Atoi(f[1])
		children[parent] = append(children[parent], child)
	}
	var out []int
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// processRSS reads a process's resident memory in bytes: private
// (RssAnon), file-backed (RssFile) and shared memory (RssShmem).
func processRSS(pid int) (anon, file, shmem int64) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch k, v, _ := strings.Cut(sc.Text(), ":"); k {
		case "RssAnon":
			anon = kB(v)
		case "RssFile":
			file = kB(v)
		case "RssShmem":
			shmem = kB(v)
		}
	}
	return anon, file, shmem
}

// ownPeak is this process's peak resident memory (VmHWM) in bytes.
func ownPeak() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if k, v, _ := strings.Cut(line, ":"); k == "VmHWM" {
			return kB(v)
		}
	}
	return 0
}

// resetOwnPeak starts this process's VmHWM again from its current RSS
// (writing 5 to clear_refs, Linux 4.0 and later), so that ownPeak then
// says what the drill took, not what the process took before it.
func resetOwnPeak() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// kB reads a "  1234 kB" value of /proc/PID/status as bytes.
func kB(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n << 10
}
