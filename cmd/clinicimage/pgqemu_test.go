package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// The arm64 trees the Pi image carries, both major versions, run on this
// machine under qemu-user: postgres --version names its version, and a
// cluster made by this machine's initdb of that version (the tree keeps no
// initdb, and its libpq is not among the pinned packages) starts on the
// tree's pg_ctl and postgres and passes runServer's queries (amcheck, time
// zone abbreviations, text search) and its databases in the tree's arm64
// locales sort by them (en_US.UTF-8, es_US.UTF-8, en_GB.UTF-8, C.UTF-8),
// while one in a locale the tree lacks is named. pg_ctl starts postgres
// itself, so arm64 programs must run when executed (binfmt_misc;
// .ci/setup registers qemu-aarch64 where systemd has not).
func TestPGTreesForThePiRunUnderQemu(t *testing.T) {
	testenv.NeedRoot(t) // the server runs as the postgres user
	qemu := testenv.NeedCommand(t, "qemu-aarch64-static")
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		testenv.Skip(t, "arm64 programs do not run here when executed: qemu-aarch64 is not registered with binfmt_misc (.ci/setup)")
	}
	trees, uid, gid := builtPGTrees(t, "arm64")
	ctx := context.Background()
	for _, major := range trees.Majors {
		t.Run(strconv.Itoa(major), func(t *testing.T) {
			bin := filepath.Join(trees.Dir, fmt.Sprint("pg", major), fmt.Sprintf("usr/lib/postgresql/%d/bin", major))
			v, err := exec.Command(qemu, filepath.Join(bin, "postgres"), "--version").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(v), fmt.Sprintf("postgres (PostgreSQL) %d.", major)) {
				t.Fatalf("qemu-aarch64-static postgres --version: %v %s; want PostgreSQL %d", err, v, major)
			}
			b, err := treeSearch(trees).Find(ctx, major)
			if err != nil || b.Dir != bin {
				t.Fatalf("Find(%d): got %+v, %v; want the arm64 tree's programs", major, b, err)
			}
			runServer(t, b, uid, gid)
		})
	}
}
