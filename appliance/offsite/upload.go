package offsite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// UploadBackup sends backup backupID of the drive at repoDir to the vault:
// through the spool (spool.go), as an incremental backup when it can be,
// when Config.Spool is set; else whole from the drive.
func (s *Shipper) UploadBackup(ctx context.Context, repoDir, backupID string) error {
	if s.cfg.Spool != "" {
		return s.uploadSpooled(ctx, repoDir, backupID)
	}
	return s.uploadFrom(ctx, repoDir, backupID)
}

// uploadFrom copies a complete base backup from a local repository (a
// drive, or the spool) to the vault, file by file, as stored (the files
// are already sealed). Each file continues at the offset the vault holds durably, so
// an interrupted upload resumes where it stopped; the vault checks every
// file's size and SHA-256 against backup.json and makes the backup
// visible only when all are there. Uploads are paced by the bandwidth cap.
func (s *Shipper) uploadFrom(ctx context.Context, repoDir, backupID string) error {
	repo, err := archive.Open(repoDir)
	if err != nil {
		return err
	}
	b, err := repo.Backup(backupID)
	if err != nil {
		return err
	}
	dir := filepath.Join(repoDir, "backups", backupID)
	meta, err := os.ReadFile(filepath.Join(dir, "backup.json"))
	if err != nil {
		return fmt.Errorf("offsite: backup %s: %w", backupID, err)
	}
	if err := s.call(ctx, "PUT", "/v1/repo", nil, mustJSON(repo.Info), nil); err != nil {
		return err
	}
	var p wire.BackupProgress
	if err := s.call(ctx, "GET", "/v1/backups/"+backupID, nil, nil, &p); err != nil {
		return err
	}
	if !p.Complete {
		err := s.call(ctx, "PUT", "/v1/backups/"+backupID+"/meta", nil, meta, &p)
		if c, _ := code(err); c != "exists" && err != nil {
			return err
		}
		if err == nil {
			if err := s.uploadFiles(ctx, b, dir, p.Files); err != nil {
				return err
			}
			if err := s.call(ctx, "POST", "/v1/backups/"+backupID+"/commit", nil, nil, &p); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	s.stored(b)
	s.st.Uploading, s.st.UploadDone, s.st.UploadTotal = "", 0, 0
	s.mu.Unlock()
	s.log.Info("base backup stored offsite", "op", "offsite", "backup", backupID)
	return nil
}

// uploadFiles sends each file from the vault's durable size onwards.
func (s *Shipper) uploadFiles(ctx context.Context, b *archive.Backup, dir string, have map[string]int64) error {
	names := []string{}
	var total, done int64
	for _, f := range b.Files {
		names = append(names, f.Name)
	}
	for _, extra := range []string{"backup.json.age", "backup.sig", "verify.json"} {
		if _, err := os.Stat(filepath.Join(dir, extra)); err == nil {
			names = append(names, extra)
		}
	}
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil {
			total += fi.Size()
			done += min(have[n], fi.Size())
		}
	}
	s.mu.Lock()
	s.st.Uploading, s.st.UploadDone, s.st.UploadTotal = b.ID, done, total
	s.mu.Unlock()
	for _, n := range names {
		if err := s.uploadFile(ctx, b.ID, filepath.Join(dir, n), have[n]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Shipper) uploadFile(ctx context.Context, id, path string, off int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("offsite: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("offsite: %w", err)
	}
	name := filepath.Base(path)
	buf := make([]byte, 1<<20)
	for off < fi.Size() || (off == 0 && fi.Size() == 0) {
		n := min(int64(s.rate.chunk(s.throttle.chunk())), fi.Size()-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("offsite: read %s: %w", path, err)
		}
		if err := s.throttle.wait(ctx, int(n)); err != nil {
			return fmt.Errorf("offsite: upload %s: %w", name, err)
		}
		if err := s.gate.wait(ctx); err != nil { // WAL first
			return fmt.Errorf("offsite: upload %s: %w", name, err)
		}
		var p wire.BackupProgress
		q := url.Values{"offset": {strconv.FormatInt(off, 10)}}
		start := time.Now()
		err := s.callYielding(ctx, "PUT", "/v1/backups/"+id+"/files/"+name, q, buf[:n], &p)
		s.rate.sent(int(n), time.Since(start))
		if c, prob := code(err); c == "gap" {
			off = prob.Size // the vault holds another amount; continue from there
			continue
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.st.UploadDone += p.Files[name] - off
		s.mu.Unlock()
		off = p.Files[name]
		if fi.Size() == 0 {
			break
		}
	}
	return nil
}
