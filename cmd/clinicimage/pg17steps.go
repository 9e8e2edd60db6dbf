package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
)

// The Father drive: backed up from the clinic's server once it runs
// PostgreSQL 17, and drilled by the box with the PostgreSQL 17 the image
// carries (its programs patched to the image's loader, its restore
// commands run by the box's /bin/sh).
const (
	fatherUSB = "father"
	fatherGen = "Father"
)

// switchTo17 stops the clinic's PostgreSQL 15 and starts a PostgreSQL 17
// with the same certificate, roles and clinic where the guest's relays
// connect (the old server's port, forwarded to the new one), as a
// practice that upgrades its server keeps its address; it waits until the
// box reaches it.
func switchTo17(ctx context.Context, s *smoke) error {
	if err := s.db.Stop(); err != nil {
		return err
	}
	db, err := startHostDBOf(ctx, pgcluster.Options{TLS: s.db.cert, Major: 17, WALSegMiB: s.set.walSegMiB()})
	if err != nil {
		return err
	}
	s.db = db
	if s.fwd, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.dbPort))); err != nil {
		return fmt.Errorf("forward to PostgreSQL 17: %w", err)
	}
	go forward(s.fwd, net.JoinHostPort("127.0.0.1", strconv.Itoa(db.Port)))
	return s.pollStatus(ctx, func(st *status.Status) error {
		if !st.Database.Reachable || st.Database.Version/10000 != 17 {
			return fmt.Errorf("the box sees database version %d, reachable %v (%q)", st.Database.Version, st.Database.Reachable, st.Headline)
		}
		fmt.Fprintf(s.out, "smoke: PostgreSQL 17 pid %d on port %d, reached by the box through port %d\n", db.pid, db.Port, s.dbPort)
		return nil
	})
}

// forward joins each connection l accepts to a new connection to addr,
// until l is closed.
func forward(l net.Listener, addr string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return
			}
			defer up.Close()
			relay(up.(*net.TCPConn), c, c)
		}()
	}
}

// fatherDrill17 plugs a new drive, enrolls it as Father, waits for its
// base backup of the PostgreSQL 17 server to verify and for the box's
// drill of it to pass on PostgreSQL 17.
func fatherDrill17(ctx context.Context, s *smoke) error {
	s.drive = driveRun{image: filepath.Join(s.dir, fatherUSB+".img")}
	if err := makeExt4Disk(ctx, s.drive.image, sonSize, "BACKUP"); err != nil {
		return err
	}
	if err := s.plugUnknown(ctx, fatherUSB, s.drive.image); err != nil {
		return err
	}
	if err := enrollAs(ctx, s, fatherGen); err != nil {
		return err
	}
	return drillPassesOnBox(ctx, s, "17")
}
