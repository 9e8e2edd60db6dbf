package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		return fmt.Errorf("usage: clinicimage build [-o FILE] TARGET")
	}
	root, set, err := loadProject()
	if err != nil {
		return err
	}
	t := set.Targets[fset.Arg(0)]
	if t == nil {
		return fmt.Errorf("no target %q in gokr-packer.yml", fset.Arg(0))
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
	if err := buildImage(ctx, root, t, pw, image, "", stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "clinicimage: wrote %s in %s\n", image, time.Since(start).Round(time.Second))
	return nil
}

// buildImage writes t's image to the file image: config.json with the
// target's overrides and password, built by monogok from the module's
// go.mod, /perm formatted and, unless permSeed is empty, holding a copy of
// that directory. Nothing is written outside root's _work and the image's
// directory.
func buildImage(ctx context.Context, root string, t *Target, password, image, permSeed string, stdout, stderr io.Writer) error {
	configJSON, err := os.ReadFile(filepath.Join(root, "config.json"))
	if err != nil {
		return err
	}
	cfg, err := deriveConfig(configJSON, t, password)
	if err != nil {
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
	if err := os.MkdirAll(filepath.Dir(image), 0o755); err != nil {
		return err
	}
	partial := image + ".partial"
	os.Remove(partial)
	defer os.Remove(partial)
	cmd := exec.CommandContext(ctx, monogok, "--config", cfgPath, "overwrite",
		"--full", partial, "--target_storage_bytes", strconv.FormatInt(t.StorageBytes, 10), "--sudo", "never")
	cmd.Dir = root
	// An empty XDG_CONFIG_HOME keeps the builder's ~/.config/gokrazy out of
	// the image and keeps monogok from writing there.
	cmd.Env = append(hostGoEnv(), "GOARCH="+t.GOARCH, "GOOS=linux", "XDG_CONFIG_HOME="+filepath.Join(work, "xdg"))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("monogok %s: %w", t.Name, err)
	}
	if _, err := formatPerm(ctx, partial, permSeed, stdout, stderr); err != nil {
		return err
	}
	return os.Rename(partial, image)
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
