package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// restoreClinicctl restores the repository to its latest WAL and starts it.
func (b *bench) restoreClinicctl(ctx context.Context, src *restoreSource) (restoreRun, error) {
	var r restoreRun
	pgdata := b.fresh("restore-ours")
	defer os.RemoveAll(pgdata)
	sock, err := b.scratchForServer("restore-ours-sock")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(sock)
	args := []string{"restore", "--repo", src.repo, "--identity", b.idFile, "--pgdata", pgdata, "--latest"}
	if b.srv.ok {
		args = append(args, "--owner", "postgres")
	}
	start := time.Now()
	if r.unpack, _, err = b.clinicctl(ctx, args...); err != nil {
		return r, err
	}
	return r, b.startRestored(ctx, pgdata, sock, start, &r)
}

// restoreReference unpacks pg_basebackup's tars, points restore_command at
// pg_receivewal's directory, and starts the result.
func (b *bench) restoreReference(ctx context.Context, src *restoreSource) (restoreRun, error) {
	var r restoreRun
	pgdata, err := b.scratchForServer("restore-ref")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(pgdata)
	sock, err := b.scratchForServer("restore-ref-sock")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(sock)
	start := time.Now()
	// GNU tar recognises the zstd compression of base.tar.zst by itself.
	if r.unpack, _, err = runTimed(b.srv.command(ctx, "tar", "-xf", filepath.Join(src.baseDir, "base.tar.zst"), "-C", pgdata)); err != nil {
		return r, err
	}
	if _, _, err := runTimed(b.srv.command(ctx, "tar", "-xf", filepath.Join(src.baseDir, "pg_wal.tar"), "-C", filepath.Join(pgdata, "pg_wal"))); err != nil {
		return r, err
	}
	conf := fmt.Sprintf("\nrestore_command = 'cp \"%s/%%f\" \"%%p\"'\n", src.walDir)
	if err := b.appendForServer(filepath.Join(pgdata, "postgresql.auto.conf"), conf); err != nil {
		return r, err
	}
	if err := b.appendForServer(filepath.Join(pgdata, "recovery.signal"), ""); err != nil {
		return r, err
	}
	r.unpack.Wall = time.Since(start) // both tars and the recovery settings
	return r, b.startRestored(ctx, pgdata, sock, start, &r)
}

// scratchForServer makes a fresh empty directory owned by the server's user.
func (b *bench) scratchForServer(name string) (string, error) {
	dir := filepath.Join(b.pgwork, name)
	os.RemoveAll(dir)
	return dir, b.srv.mkdir(dir, 0o700)
}

// appendForServer appends text to a file of the server's user.
func (b *bench) appendForServer(name, text string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || !b.srv.ok {
		return err
	}
	return os.Chown(name, b.srv.uid, b.srv.gid)
}
