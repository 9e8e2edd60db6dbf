package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The host reads the smoke's disk images with debugfs, without mounting
// them: it needs neither root nor loop devices, and cannot write to them.

// makeExt4Disk writes a sparse disk image of size bytes holding an ext4
// file system with the given label (no partition table, like a drive
// formatted whole).
func makeExt4Disk(ctx context.Context, path string, size int64, label string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", label, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// debugfs runs one request on the ext4 file system that starts at byte
// offset off of image. debugfs exits 0 even when the request fails, so
// any line on its standard error other than its version banner is the
// error.
func debugfs(ctx context.Context, image string, off int64, request string) ([]byte, error) {
	dev := image
	if off != 0 {
		dev += "?offset=" + strconv.FormatInt(off, 10)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "debugfs", "-R", request, dev)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var complaints []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			complaints = append(complaints, line)
		}
	}
	if err == nil && len(complaints) > 0 {
		err = fmt.Errorf("%s", strings.Join(complaints, "; "))
	}
	if err != nil {
		return nil, fmt.Errorf("debugfs %q %s: %w", request, image, err)
	}
	return stdout.Bytes(), nil
}

// ext4List returns the names in directory dir of the file system at byte
// offset off of image, without "." and "..".
func ext4List(ctx context.Context, image string, off int64, dir string) ([]string, error) {
	out, err := debugfs(ctx, image, off, "ls -p "+dir)
	if err != nil {
		return nil, err
	}
	return parseLsP(out), nil
}

// parseLsP reads debugfs's "ls -p" lines, /inode/mode/uid/gid/name/size/,
// and returns the names other than "." and "..". A name with a slash
// cannot occur.
func parseLsP(out []byte) []string {
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), "/")
		if len(f) < 7 || f[5] == "." || f[5] == ".." {
			continue
		}
		names = append(names, f[5])
	}
	return names
}

// ext4Dump copies directory path of the file system on image (at offset
// 0, a drive formatted whole) with its contents into the directory dest.
func ext4Dump(ctx context.Context, image, path, dest string) error {
	_, err := debugfs(ctx, image, 0, fmt.Sprintf("rdump %s %s", path, dest))
	return err
}
