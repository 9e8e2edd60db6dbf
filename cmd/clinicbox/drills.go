package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
)

// ramScratch is where a drill's scratch in memory is mounted.
const ramScratch = "/run/clinicbox-drill"

// drillConfig is what the box's own restore drills run with: the
// PostgreSQL trees the image carries (pgDir/pgN, each laid out like
// Debian's packages so PostgreSQL finds its share directory beside its
// programs), clinicctl for restore_command's wal-fetch, and scratch space
// on /perm, or in memory under /run (gokrazy's tmpfs) where the kernel
// cannot encrypt. Nil, with the reason logged, when the image carries no
// clinicctl: a drill could not fetch WAL. A PostgreSQL major version the
// image lacks is not checked here: the drill of such a backup names the
// missing version in its report.
func drillConfig(pgDir, clinicctl, stateDir string, log *slog.Logger) *appliance.DrillConfig {
	if fi, err := os.Stat(clinicctl); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		log.Warn("restore drills are off: the image carries no clinicctl to fetch WAL with", "clinicctl", clinicctl, "err", err)
		return nil
	}
	return &appliance.DrillConfig{
		FetchProgram: clinicctl,
		Search:       boxSearch(pgDir),
		Scratch:      drillScratch(stateDir),
		RAMScratch:   ramScratch,
	}
}

// boxSearch finds PostgreSQL only among the trees the image carries:
// never on PATH, where a program of another build could answer.
func boxSearch(pgDir string) pgbin.Search {
	return pgbin.Search{
		Layouts: []string{filepath.Join(pgDir, "pg%d", "usr/lib/postgresql/%d/bin")},
		// Each tree's compiled locales, from the glibc it runs
		// (cmd/clinicimage's drillLocales); the box has no others.
		Locales: filepath.Join(pgDir, "pg%d", "locale"),
		NoPath:  true,
		Hint:    fmt.Sprintf("build the box's image with that version (cmd/clinicimage's PostgreSQL list) so that it is under %s", pgDir),
	}
}

// drillScratch is where a drill's encrypted scratch goes: beside the state
// directory, not in it, since only root may enter the state (it holds the
// box's keys) and the drill's PostgreSQL runs as its own user, which must
// reach its data directory: /perm/clinicbox-drill for /perm/clinicbox.
func drillScratch(stateDir string) string {
	stateDir = filepath.Clean(stateDir)
	return filepath.Join(filepath.Dir(stateDir), filepath.Base(stateDir)+"-drill")
}
