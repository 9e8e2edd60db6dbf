package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// mv is "mv [-f] FROM TO" for one file or directory on the same file
// system (a rename: what restore_command and recovery_end_command need;
// the image has no coreutils). -f is accepted and changes nothing: a
// rename never asks.
func mv(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "-f" {
		args = args[1:]
	}
	if len(args) != 2 {
		fmt.Fprintf(stderr, "mv: %v\n", errUnsupported{"mv other than mv [-f] FROM TO"})
		return 2
	}
	to := args[1]
	if fi, err := os.Stat(to); err == nil && fi.IsDir() {
		to = filepath.Join(to, filepath.Base(args[0]))
	}
	if err := os.Rename(args[0], to); err != nil {
		fmt.Fprintf(stderr, "mv: %v\n", err)
		return 1
	}
	return 0
}

// rm is "rm -f FILE..." and "rm -rf PATH...": a missing path is no error.
func rm(args []string, stderr io.Writer) int {
	recursive := false
	switch {
	case len(args) > 0 && (args[0] == "-rf" || args[0] == "-fr"):
		recursive = true
	case len(args) > 0 && args[0] == "-f":
	default:
		fmt.Fprintf(stderr, "rm: %v\n", errUnsupported{"rm without -f or -rf"})
		return 2
	}
	status := 0
	for _, p := range args[1:] {
		var err error
		if recursive {
			err = os.RemoveAll(p)
		} else if err = os.Remove(p); os.IsNotExist(err) {
			err = nil
		}
		if err != nil {
			fmt.Fprintf(stderr, "rm: %v\n", err)
			status = 1
		}
	}
	return status
}
