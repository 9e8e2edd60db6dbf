package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// boxPackage is the appliance service, whose package config carries the
// files a drill needs.
const boxPackage = "github.com/clinicbox/clinicbox/cmd/clinicbox"

// pgUser is the unprivileged user the drill's PostgreSQL runs as
// (restore.ServerUser looks it up by name); its home is never used.
const (
	etcPasswd = "root:x:0:0:root:/:/bin/false\npostgres:x:70:70:PostgreSQL for restore drills:/nonexistent:/bin/false\n"
	etcGroup  = "root:x:0:\npostgres:x:70:\n"
)

// pgTreeVersion changes when assemblePG keeps other files, so that trees
// built before are built again (as they are when drillLocales change).
const pgTreeVersion = "2"

// drillFiles builds what the image needs for restore drills on the box,
// for t's architecture: the PostgreSQL trees, time zone data and /bin/sh
// (cmd/clinicsh). The trees are kept in root's _work and built again only
// when the lock changes.
func drillFiles(ctx context.Context, root string, t *Target, stdout, stderr io.Writer) (paths, contents map[string]string, err error) {
	lock, err := os.ReadFile(filepath.Join(root, pgLockFile))
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(fmt.Appendf(lock, "%s %v", pgTreeVersion, drillLocales))
	out := filepath.Join(root, "_work", "pgtree-"+t.GOARCH)
	stamp := filepath.Join(out, "stamp")
	trees := &pgTrees{Dir: filepath.Join(out, "lib"), Zoneinfo: filepath.Join(out, "zoneinfo")}
	if b, err := os.ReadFile(stamp); err != nil || string(b) != hex.EncodeToString(sum[:]) {
		fmt.Fprintf(stdout, "clinicimage: PostgreSQL for %s from Debian's packages (%s)\n", t.GOARCH, pgLockFile)
		if trees, err = buildPGTrees(ctx, bytes.NewReader(lock), t.GOARCH, filepath.Join(root, "_work", "debs"), out, pgTreeRoot); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(stamp, []byte(hex.EncodeToString(sum[:])), 0o644); err != nil {
			return nil, nil, err
		}
	}
	sh := filepath.Join(out, "sh")
	err = goCommand(ctx, root, []string{"GOOS=linux", "GOARCH=" + t.GOARCH, "CGO_ENABLED=0"}, stdout, stderr, "build", "-trimpath", "-o", sh, "./cmd/clinicsh")
	if err != nil {
		return nil, nil, fmt.Errorf("build clinicsh: %w", err)
	}
	paths = map[string]string{pgTreeRoot: trees.Dir, "/usr/share/zoneinfo": trees.Zoneinfo, "/bin/sh": sh}
	contents = map[string]string{"/etc/passwd": etcPasswd, "/etc/group": etcGroup}
	return paths, contents, nil
}

// addExtraFiles adds files to the box package's config in a derived
// config.json.
func addExtraFiles(cfg []byte, paths, contents map[string]string) ([]byte, error) {
	var in map[string]any
	if err := json.Unmarshal(cfg, &in); err != nil {
		return nil, err
	}
	pcs, _ := in["PackageConfig"].(map[string]any)
	if pcs == nil {
		pcs = map[string]any{}
		in["PackageConfig"] = pcs
	}
	pc, _ := pcs[boxPackage].(map[string]any)
	if pc == nil {
		pc = map[string]any{}
		pcs[boxPackage] = pc
	}
	for field, add := range map[string]map[string]string{"ExtraFilePaths": paths, "ExtraFileContents": contents} {
		m, _ := pc[field].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		for k, v := range add {
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("config.json: %s already has %s in %s", boxPackage, k, field)
			}
			m[k] = v
		}
		pc[field] = m
	}
	out, err := json.MarshalIndent(in, "", "    ")
	return append(out, '\n'), err
}
