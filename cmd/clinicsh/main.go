// Command clinicsh is the box's /bin/sh: just enough of the POSIX shell for
// what PostgreSQL runs through system() and popen() during a restore drill.
//
//	sh -c 'COMMAND [&&|;|| COMMAND]...'
//
// The gokrazy image has no shell, and PostgreSQL needs one: pg_ctl starts
// the server with `exec "postgres" ... < "/dev/null" >> "LOG" 2>&1` and asks
// `"postgres" -V` through popen, and recovery runs restore_command and
// recovery_end_command (`mv -f CACHE/%f "%p" 2>/dev/null || "clinicctl"
// wal-fetch ...`). It is written here rather than taken from a static
// busybox or dash because those are whole command interpreters (variables,
// globbing, command substitution, scripts) that a backup box holding
// patient data has no use for, and would need their own C library in the
// image; this one implements words with POSIX quoting, the ;, && and ||
// lists, redirections of 0, 1 and 2, and the built-ins exec, exit, mv -f and
// rm -rf/-f, and refuses everything else (exit 2) rather than guess.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is sh with args; it returns the exit status.
func run(args []string, stderr io.Writer) int {
	// A C library whose system() and popen() run `sh -c -- COMMAND` (glibc
	// from 2.37, as in PostgreSQL 17's Debian 13 build) ends the options
	// with --, as POSIX allows.
	if len(args) >= 2 && args[0] == "-c" && args[1] == "--" {
		args = args[1:]
		args[0] = "-c"
	}
	if len(args) < 2 || args[0] != "-c" {
		fmt.Fprintln(stderr, "sh: usage: sh -c COMMAND (this shell runs no scripts and no interactive sessions)")
		return 2
	}
	// Further arguments would be $0, $1 ...; no command here uses them,
	// and parse refuses $ anyway.
	cmds, err := parse(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 2
	}
	return runList(cmds, stderr)
}

// runList runs the commands as a POSIX list: && runs the next command
// when the last status was 0, || when it was not.
func runList(cmds []command, stderr io.Writer) int {
	status := 0
	for _, c := range cmds {
		if c.join == "&&" && status != 0 || c.join == "||" && status == 0 {
			continue
		}
		var exit bool
		status, exit = runCommand(c, stderr)
		if exit {
			break
		}
	}
	return status
}
