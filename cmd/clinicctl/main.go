// Command clinicctl is the operator's and support's command line for
// clinicbox repositories, from the server step of the data path to the
// restore step: keys, backups, WAL streaming, verification, listing,
// restores and drills.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"syscall"
)

type command struct {
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	usage string
}

var commands = map[string]command{
	"keygen": {runKeygen, "keygen --out FILE                  write an age identity, print its recipient"},
	"backup": {runBackup, "backup --db URL --repo DIR --recipient R [--compress server-zstd|zstd|none]"},
	"stream": {runStream, "stream --db URL --repo DIR --slot NAME --recipient R   (until Ctrl-C)"},
	"verify": {runVerify, "verify (--repo DIR | --vault HOST) --identity FILE [--backup ID]"},
	"list":   {runList, "list --repo DIR [--json]"},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if p := os.Getenv("CLINICCTL_CPUPROFILE"); p != "" { // for support: profile one run
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	// The box has little memory, and every run of clinicctl must stay
	// within 64 MiB of resident memory, of which the program's own code
	// and tables take about 20 MiB. Go's heap, which otherwise grows to
	// twice what is live before it is collected, grows by half instead
	// (collections are rare: a few a minute while streaming), and the
	// runtime collects harder rather than pass 40 MiB. GOGC and GOMEMLIMIT
	// override these.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(40 << 20)
	}
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if !errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "clinicctl:", err)
		}
		pprof.StopCPUProfile()
		os.Exit(exitCode(err))
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stderr)
		return usageError{}
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "clinicctl: unknown command %q\n", args[0])
		printUsage(stderr)
		return usageError{}
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: clinicctl COMMAND [flags]")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(w, "  clinicctl", commands[n].usage)
	}
}

// usageError means the usage was already printed.
type usageError struct{}

func (usageError) Error() string { return "usage" }

// failedCheck means a check ran and found problems (already printed).
type failedCheck struct{ msg string }

func (f failedCheck) Error() string { return f.msg }

func exitCode(err error) int {
	var ue usageError
	var wf walFetchExit
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &wf):
		return wf.code
	}
	return 1
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("clinicctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags and insists on the required ones.
func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{}
	}
	for _, name := range required {
		if f := fs.Lookup(name); f != nil && f.Value.String() == "" {
			fmt.Fprintf(fs.Output(), "%s: --%s is required\n", fs.Name(), name)
			fs.Usage()
			return usageError{}
		}
	}
	return nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string {
	if l == nil || len(*l) == 0 {
		return ""
	}
	return fmt.Sprint([]string(*l))
}
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
