package fault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a command run as a child so that it can be killed the way a
// power cut or the supervisor's SIGKILL would: no deferred cleanup runs.
type Process struct {
	Name string
	cmd  *exec.Cmd

	mu   sync.Mutex
	out  bytes.Buffer // stdout and stderr together
	done chan struct{}
	err  error // Wait's result, set before done closes
}

// syncBuffer is the writer both output streams share.
type syncBuffer struct{ p *Process }

func (s syncBuffer) Write(b []byte) (int, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.p.out.Write(b)
}

// Start runs bin with args.
func Start(bin string, args ...string) (*Process, error) {
	return StartCmd(args[0], exec.Command(bin, args...))
}

// StartCmd runs cmd, prepared by the caller (environment, directory),
// under name; its output is collected as Start's is.
func StartCmd(name string, cmd *exec.Cmd) (*Process, error) {
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = syncBuffer{p}, syncBuffer{p}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("fault: start %s: %w", p.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Kill sends SIGKILL unless the process already ended, waits for it, and
// reports whether the signal hit a running process.
func (p *Process) Kill() bool {
	select {
	case <-p.done:
		return false
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	var ee *exec.ExitError
	return errors.As(p.err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()
}

// KillAfter kills the process after d (the fault, not a synchronization)
// unless it ends first; it reports whether the kill hit a running process.
func (p *Process) KillAfter(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return false
	case <-t.C:
		return p.Kill()
	}
}

// Interrupt sends SIGINT (a clean stop) and waits.
func (p *Process) Interrupt() error {
	p.cmd.Process.Signal(syscall.SIGINT)
	<-p.done
	return p.err
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error once Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Output is what the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Progress is a fingerprint of what the process has done so far: how much
// it printed and how much CPU time it used. Waits for the process take a
// change as a sign that it is still working, however slowly.
func (p *Process) Progress() string {
	return fmt.Sprintf("out %d cpu %s", len(p.Output()), cpuTime(p.cmd.Process.Pid))
}

// cpuTime is the user and system time in clock ticks from
// /proc/PID/stat; "" once the process has gone.
func cpuTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15,
	// the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return ""
	}
	return f[11] + "+" + f[12]
}
