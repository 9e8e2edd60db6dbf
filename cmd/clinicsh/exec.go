package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// runCommand runs one simple command and returns its status, and whether
// the shell must stop (exit).
func runCommand(c command, stderr io.Writer) (status int, exit bool) {
	files, closeAll, err := openRedirects(c.redirects)
	defer closeAll()
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 1, false
	}
	errOut := stderr
	if files[2] != os.Stderr {
		errOut = files[2]
	}
	switch c.words[0] {
	case "exit":
		return exitStatus(c.words[1:], errOut), true
	case "exec":
		return execReplacing(c.words[1:], files, errOut), true
	case "mv":
		return mv(c.words[1:], errOut), false
	case "rm":
		return rm(c.words[1:], errOut), false
	}
	return external(c.words, files, errOut), false
}

// openRedirects applies the redirections in order to the shell's own
// standard files. The returned function closes what was opened.
func openRedirects(rs []redirect) ([3]*os.File, func(), error) {
	files := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for _, r := range rs {
		if r.op == ">&" {
			m, _ := strconv.Atoi(r.file) // parse allowed only 0, 1, 2
			files[r.fd] = files[m]
			continue
		}
		flags := map[string]int{"<": os.O_RDONLY, ">": os.O_WRONLY | os.O_CREATE | os.O_TRUNC, ">>": os.O_WRONLY | os.O_CREATE | os.O_APPEND}[r.op]
		f, err := os.OpenFile(r.file, flags, 0o666)
		if err != nil {
			return files, closeAll, err
		}
		opened = append(opened, f)
		files[r.fd] = f
	}
	return files, closeAll, nil
}

// external runs a program and waits for it.
func external(argv []string, files [3]*os.File, stderr io.Writer) int {
	path, status := lookPath(argv[0], stderr)
	if status != 0 {
		return status
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Stdin: files[0], Stdout: files[1], Stderr: files[2]}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	fmt.Fprintf(stderr, "sh: %s: %v\n", argv[0], err)
	return 126
}

// execReplacing is the exec built-in: the program replaces the shell, with
// the redirections made its standard files (pg_ctl relies on the server
// keeping the shell's process ID).
func execReplacing(argv []string, files [3]*os.File, stderr io.Writer) int {
	if len(argv) == 0 {
		fmt.Fprintln(stderr, "sh: exec: "+errUnsupported{"exec without a command"}.Error())
		return 2
	}
	path, status := lookPath(argv[0], stderr)
	if status != 0 {
		return status
	}
	for fd, f := range files {
		if int(f.Fd()) != fd {
			if err := unix.Dup2(int(f.Fd()), fd); err != nil {
				fmt.Fprintf(stderr, "sh: exec: %v\n", err)
				return 126
			}
		}
	}
	err := unix.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "sh: exec %s: %v\n", argv[0], err)
	return 126
}

// lookPath finds a program as sh does: a name with a slash as it is,
// another on PATH. The status is 127 when it is not there, 126 when it
// cannot be run.
func lookPath(name string, stderr io.Writer) (string, int) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, 0
	}
	fmt.Fprintf(stderr, "sh: %s: %v\n", name, err)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
		return "", 127
	}
	return "", 126
}

// exitStatus is the exit built-in's status.
func exitStatus(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		return 0
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 || n > 255 || len(args) > 1 {
		fmt.Fprintf(stderr, "sh: exit: bad status %q\n", args)
		return 2
	}
	return n
}
