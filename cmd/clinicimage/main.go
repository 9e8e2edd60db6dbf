// Command clinicimage builds the box's gokrazy images (box step of the data
// path) from config.json and gokr-packer.yml, and boots them under qemu to
// check that the appliance comes up (make smoke, make smoke-pi).
//
//	clinicimage build [-o FILE] [-perm DIR] TARGET
//	                                     write the image of a gokr-packer.yml target
//	clinicimage smoke [-keep]            build, boot and check the smoke target
//	clinicimage smoke-pi [-keep]         the same with the Pi image on an emulated Raspberry Pi 3B
//	clinicimage update [-addr HOST[:PORT]] TARGET
//	                                     build a target and install it on a running box over the network
//	clinicimage relay HOST:PORT          (run by qemu) join stdin and stdout to HOST:PORT
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "relay" {
		os.Exit(relayMain(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "clinicimage:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "build":
			return runBuild(ctx, args[1:], stdout, stderr)
		case "smoke", "smoke-pi":
			return runSmoke(ctx, args[0], args[1:], stdout, stderr)
		case "update":
			return runUpdate(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, "usage: clinicimage build [-o FILE] [-perm DIR] TARGET | clinicimage smoke [-keep] | clinicimage smoke-pi [-keep] | clinicimage update [-addr HOST[:PORT]] TARGET")
	return flag.ErrHelp
}

// loadProject finds the module root above the working directory and reads
// its gokr-packer.yml.
func loadProject() (root string, set *Settings, err error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", nil, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil, fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
	set, err = readSettings(filepath.Join(dir, "gokr-packer.yml"))
	return dir, set, err
}
