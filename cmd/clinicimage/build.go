package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// monogokPkg is the image builder, a tool in go.mod.
const monogokPkg = "github.com/bradfitz/monogok/cmd/monogok"

// runBuild is "clinicimage build TARGET": it writes the target's image.
func runBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("build", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("o", "", "image file (default: the target's output in gokr-packer.yml)")
	perm := fset.String("perm", "", "a directory whose contents go onto the image's /perm (the box's settings in clinicbox/settings.json and the secret files it names)")
	root, t, err := parseTarget(fset, args, "build [-o FILE] [-perm DIR] TARGET")
	if err != nil {
		return err
	}
	pw, source, err := updatePassword(root, os.Getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "clinicimage: update password from %s\n", source)
	image := *out
	if image == "" {
		image = filepath.Join(root, t.Output)
	}
	start := time.Now()
	if *perm != "" {
		if fi, err := os.Stat(*perm); err != nil || !fi.IsDir() {
			return fmt.Errorf("-perm %s: want a directory to copy onto /perm (%v)", *perm, err)
		}
	}
	if err := buildImage(ctx, root, t, pw, image, *perm, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "clinicimage: wrote %s in %s\n", image, time.Since(start).Round(time.Second))
	return nil
}

// parseTarget parses a command's flags and its one argument, a target of
// the project's gokr-packer.yml, and returns the project's root and that
// target.
func parseTarget(fset *flag.FlagSet, args []string, usage string) (string, *Target, error) {
	if err := fset.Parse(args); err != nil {
		return "", nil, err
	}
	if fset.NArg() != 1 {
		return "", nil, fmt.Errorf("usage: clinicimage %s", usage)
	}
	root, set, err := loadProject()
	if err != nil {
		return "", nil, err
	}
	t := set.Targets[fset.Arg(0)]
	if t == nil {
		return "", nil, fmt.Errorf("no target %q in gokr-packer.yml", fset.Arg(0))
	}
	return root, t, nil
}

// runUpdate is "clinicimage update": build the target and install it on
// the box at -addr (default: config.json's Hostname) with the update
// password, which must be the one the box's image was built with.
func runUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("update", flag.ContinueOnError)
	fset.SetOutput(stderr)
	addr := fset.String("addr", "", "the box's address on the practice network, host or host:port (default: config.json's Hostname)")
	root, t, err := parseTarget(fset, args, "update [-addr HOST[:PORT]] TARGET")
	if err != nil {
		return err
	}
	pw, source, err := existingPassword(root, os.Getenv)
	if err != nil {
		return err
	}
	if *addr == "" {
		b, err := os.ReadFile(filepath.Join(root, "config.json"))
		if err != nil {
			return err
		}
		in, err := parseInstance(b)
		if err != nil {
			return err
		}
		*addr = in.Hostname
	}
	fmt.Fprintf(stdout, "clinicimage: update password from %s\n", source)
	start := time.Now()
	if err := updateBox(ctx, root, t, pw, *addr, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "clinicimage: sent the %s image in %s; the box is rebooting into it\n", t.Name, time.Since(start).Round(time.Second))
	return nil
}

// buildImage writes t's image to the file image: config.json with the
// target's overrides and password, built by monogok from the module's
// go.mod, /perm formatted and, unless permSeed is empty, holding a copy of
// that directory. Nothing is written outside root's _work and the image's
// directory.
func buildImage(ctx context.Context, root string, t *Target, password, image, permSeed string, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(filepath.Dir(image), 0o755); err != nil {
		return err
	}
	partial := image + ".partial"
	os.Remove(partial)
	defer os.Remove(partial)
	err := runMonogok(ctx, root, t, password, stdout, stderr,
		"overwrite", "--full", partial, "--target_storage_bytes", strconv.FormatInt(t.StorageBytes, 10), "--sudo", "never")
	if err != nil {
		return err
	}
	if _, err := formatPerm(ctx, partial, permSeed, stdout, stderr); err != nil {
		return err
	}
	return os.Rename(partial, image)
}

// updateBox builds t as buildImage does, as a gokrazy archive, and
// installs it on the box whose gokrazy web interface is at addr (host or
// host:port), which reboots into it; /perm stays as it is.
func updateBox(ctx context.Context, root string, t *Target, password, addr string, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp(filepath.Join(root, "_work"), "update-"+t.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	gaf := filepath.Join(dir, "clinicbox.gaf")
	if err := runMonogok(ctx, root, t, password, stdout, stderr, "overwrite", "--gaf", gaf); err != nil {
		return err
	}
	return pushUpdate(ctx, http.DefaultClient, "http://"+addr, password, gaf, stdout)
}

// runMonogok runs monogok with args on config.json as t derives it, with
// the update password.
func runMonogok(ctx context.Context, root string, t *Target, password string, stdout, stderr io.Writer, args ...string) error {
	configJSON, err := os.ReadFile(filepath.Join(root, "config.json"))
	if err != nil {
		return err
	}
	cfg, err := deriveConfig(configJSON, t, password)
	if err != nil {
		return err
	}
	paths, contents, err := drillFiles(ctx, root, t, stdout, stderr)
	if err != nil {
		return fmt.Errorf("restore drills on the box: %w", err)
	}
	if cfg, err = addExtraFiles(cfg, paths, contents); err != nil {
		return err
	}
	// monogok finds the module from the config's directory, so the derived
	// config (it holds the password) lives in the untracked _work.
	if err := os.MkdirAll(filepath.Join(root, "_work"), 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(filepath.Join(root, "_work"), "build-"+t.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfgPath := filepath.Join(work, "config.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	monogok := filepath.Join(work, "monogok")
	if err := goCommand(ctx, root, nil, stdout, stderr, "build", "-o", monogok, monogokPkg); err != nil {
		return fmt.Errorf("build monogok: %w", err)
	}
	cmd := exec.CommandContext(ctx, monogok, append([]string{"--config", cfgPath}, args...)...)
	cmd.Dir = root
	// An empty XDG_CONFIG_HOME keeps the builder's ~/.config/gokrazy out of
	// the image and keeps monogok from writing there.
	cmd.Env = append(hostGoEnv(), "GOARCH="+t.GOARCH, "GOOS=linux", "XDG_CONFIG_HOME="+filepath.Join(work, "xdg"))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("monogok %s %s: %w", args[0], t.Name, err)
	}
	return nil
}

// hostGoEnv is the environment without GOOS and GOARCH, which belong to
// the target only.
func hostGoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOOS=") && !strings.HasPrefix(kv, "GOARCH=") {
			env = append(env, kv)
		}
	}
	return env
}

// goCommand runs the go command in dir.
func goCommand(ctx context.Context, dir string, env []string, stdout, stderr io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(hostGoEnv(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}
