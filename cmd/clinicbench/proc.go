package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
)

// measure is what one run of a program cost.
type measure struct {
	Wall      time.Duration
	User, Sys time.Duration
	MaxRSSKiB int64 // peak resident set of the process and its waited-for children
	Bytes     int64 // size of what it wrote, filled in by the caller
	// Server is the CPU the database server spent meanwhile (walsender),
	// where the caller measured it.
	Server time.Duration
}

// CPU is user plus system time.
func (m measure) CPU() time.Duration { return m.User + m.Sys }

// usage fills in CPU and memory from the exited process's rusage. wait4
// reports the process together with the children it waited for, so
// pg_basebackup's forked WAL streamer is counted.
func (m *measure) usage(ps *os.ProcessState) {
	if ps == nil {
		return
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		m.User = time.Duration(ru.Utime.Nano())
		m.Sys = time.Duration(ru.Stime.Nano())
		m.MaxRSSKiB = ru.Maxrss
	}
}

// runTimed runs cmd to completion and measures it. It returns the
// program's standard output; standard error goes into the error.
func runTimed(cmd *exec.Cmd) (measure, string, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	m := measure{Wall: time.Since(start)}
	m.usage(cmd.ProcessState)
	if err != nil {
		return m, out.String(), fmt.Errorf("%s: %w\n%s", describe(cmd), err, tail(errb.String()+out.String(), 2000))
	}
	return m, out.String(), nil
}

// child is a program running in the background until told to stop.
type child struct {
	cmd   *exec.Cmd
	start time.Time
	out   bytes.Buffer
	done  chan struct{}
	err   error // valid once done is closed
	sent  bool  // a stop signal was sent
}

// startChild starts cmd in the background. The caller must stop it; the
// context the command was made with kills it if the harness gives up. Its
// output is kept for error messages unless the caller sent it elsewhere
// (a file the caller reads while the program runs).
func startChild(cmd *exec.Cmd) (*child, error) {
	c := &child{cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil && cmd.Stderr == nil {
		cmd.Stdout, cmd.Stderr = &c.out, &c.out
	}
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", describe(cmd), err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// stop sends sig, waits for the program to exit (killing it after a
// minute), and measures it. An exit caused by sig is not an error.
func (c *child) stop(sig os.Signal) (measure, error) {
	if !c.sent {
		select {
		case <-c.done:
			m := measure{Wall: time.Since(c.start)}
			m.usage(c.cmd.ProcessState)
			return m, fmt.Errorf("%s exited early: %v\n%s", describe(c.cmd), c.err, tail(c.out.String(), 2000))
		default:
		}
	}
	c.signal(sig)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		c.cmd.Process.Kill()
		<-c.done
	}
	m := measure{Wall: time.Since(c.start)}
	m.usage(c.cmd.ProcessState)
	var ee *exec.ExitError
	if c.err != nil && !(errors.As(c.err, &ee) && signalled(ee, sig)) {
		return m, fmt.Errorf("%s after %v: %w\n%s", describe(c.cmd), sig, c.err, tail(c.out.String(), 2000))
	}
	return m, nil
}

// signal asks the child to stop, once; stop then waits for it. Signalling
// several children before stopping them ends them at the same moment.
func (c *child) signal(sig os.Signal) {
	if !c.sent {
		c.sent = true
		c.cmd.Process.Signal(sig)
	}
}

// kill ends the child if it still runs (for cleanup after a failure).
func (c *child) kill() {
	select {
	case <-c.done:
	default:
		c.cmd.Process.Kill()
		<-c.done
	}
}

func signalled(ee *exec.ExitError, sig os.Signal) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// describe names a command without its arguments, which may hold the
// replication password.
func describe(cmd *exec.Cmd) string {
	name := filepath.Base(cmd.Path)
	if len(cmd.Args) > 1 && !strings.HasPrefix(cmd.Args[1], "-") {
		name += " " + cmd.Args[1]
	}
	return name
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// serverUser is the unprivileged user PostgreSQL and its tools run as when
// the harness runs as root; ok is false otherwise.
type serverUser struct {
	uid, gid int
	ok       bool
}

func lookupServerUser() (serverUser, error) {
	uid, gid, err := pgbin.ServerUser()
	return serverUser{uid: uid, gid: gid, ok: uid >= 0}, err
}

// mkdir creates a directory that the server's user owns.
func (u serverUser) mkdir(dir string, perm os.FileMode) error {
	if err := os.Mkdir(dir, perm); err != nil {
		return err
	}
	if err := os.Chmod(dir, perm); err != nil { // past the umask
		return err
	}
	if !u.ok {
		return nil
	}
	return os.Chown(dir, u.uid, u.gid)
}

// command makes a program run as the server's user.
func (u serverUser) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, prog, args...)
	if u.ok {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	}
	return cmd
}
