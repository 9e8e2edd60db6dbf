package offsite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// With a spool (Config.Spool, a directory on /perm), base backups reach the
// vault as a chain: a full one, uploaded from the drive, then incremental
// ones built from each later backup on whatever drive is in the box
// against the block map of the newest backup the vault holds (kept in the
// spool). An incremental is built whole into the spool repository first
// and uploaded from there, so an eject, a swap, a restart or a power cut
// loses nothing: the next upload (or Run, at start) finishes the pending
// one from the offset the vault holds before building another. The box
// asks the vault whether it still holds the chain's tip before building
// on it, and takes a fresh full backup when the chain grows past MaxChain,
// when its incrementals together hold more than a full one (the vault
// keeps the whole chain for as long as the newest is kept), or when the
// block map is damaged; and sends the backup whole when its incremental
// would not fit the spool (SpoolLimit).
//
// What the spool holds: chain.json (the tip, its depth and sizes),
// blockmap (16 bytes per 8 KiB of the data directory: 40 MiB for a
// 20 GiB database) and at most one incremental backup waiting to be
// uploaded (on an ordinary day a few percent of the full backup).
const (
	spoolChain    = "chain.json"
	spoolBlockMap = "blockmap"
	spoolRepo     = "repo"
	// defaultMaxChain is two weeks of daily incrementals.
	defaultMaxChain = 13
	// defaultSpoolLimit leaves most of the Pi's 0.9 GiB /perm to the
	// rest: a larger incremental goes as a full backup instead.
	defaultSpoolLimit = 384 << 20
)

// chainState is chain.json: the newest backup the vault holds of the chain
// the next incremental builds on.
type chainState struct {
	Tip        string `json:"tip"`
	Depth      int    `json:"depth"`       // incrementals on the full one
	FullBytes  int64  `json:"full_bytes"`  // stored bytes of the full one
	ChainBytes int64  `json:"chain_bytes"` // stored bytes of the incrementals
}

// uploadSpooled ships backup id of the drive at repoDir through the spool:
// a pending incremental first, then this one, incremental when it can be.
func (s *Shipper) uploadSpooled(ctx context.Context, repoDir, id string) error {
	if err := s.ResumeSpool(ctx); err != nil {
		return err
	}
	built, err := s.buildOrUploadFull(ctx, repoDir, id)
	if err != nil || !built {
		return err
	}
	return s.uploadDetached(ctx)
}

// buildOrUploadFull builds the incremental backup of id into the spool
// and reports true, or uploads id whole when a full one is due.
func (s *Shipper) buildOrUploadFull(ctx context.Context, repoDir, id string) (bool, error) {
	s.spoolMu.Lock()
	defer s.spoolMu.Unlock()
	drive, err := archive.Open(repoDir)
	if err != nil {
		return false, err
	}
	drive.Trust(s.cfg.Signer.Public()) // the box's own drive, signed with its own key
	b, err := drive.Backup(id)
	if err != nil {
		return false, err
	}
	parent, st, why := s.parentMap(ctx, b)
	if parent == nil {
		s.log.Info("offsite: uploading a full base backup", "op", "offsite", "backup", id, "why", why)
		return false, s.uploadFull(ctx, drive, b)
	}
	inc, stats, err := s.build(drive, b, parent)
	if errors.Is(err, archive.ErrTooLarge) {
		s.log.Info("offsite: the incremental backup does not fit the spool; uploading a full one", "op", "offsite", "backup", id, "limit", s.spoolLimit())
		return false, s.uploadFull(ctx, drive, b)
	}
	if err != nil {
		return false, err
	}
	s.log.Info("offsite: incremental base backup built", "op", "offsite", "backup", inc.ID, "parent", st.Tip,
		"blocks", stats.Blocks, "sent_blocks", stats.Sent, "bytes", inc.StoredBytes())
	return true, nil
}

// uploadDetached uploads the spooled backup under the service's lifetime
// (Run's context) rather than ctx, which an eject cancels: the spool does
// not need the drive. It returns when the upload ends or ctx is done,
// whichever is first.
func (s *Shipper) uploadDetached(ctx context.Context) error {
	up := ctx
	if p := s.runCtx.Load(); p != nil {
		up = *p
	}
	done := make(chan error, 1)
	go func() {
		s.spoolMu.Lock()
		defer s.spoolMu.Unlock()
		done <- s.resumeSpool(up)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// build writes the incremental backup of b into the spool. Only this reads
// the drive.
func (s *Shipper) build(drive *archive.Repo, b *archive.Backup, parent *archive.BlockMap) (*archive.Backup, archive.DeltaStats, error) {
	spool, err := s.spoolRepo(drive.Info)
	if err != nil {
		return nil, archive.DeltaStats{}, err
	}
	inc, _, stats, err := spool.WriteIncremental(drive, b, parent, s.cfg.Identities, s.spoolLimit())
	if err != nil {
		return nil, stats, fmt.Errorf("offsite: build incremental backup %s: %w", b.ID, err)
	}
	return inc, stats, nil
}

// ResumeSpool finishes uploading an incremental backup the spool holds
// (built before an eject, a restart or a power cut); nothing to do
// without a spool or a pending backup.
func (s *Shipper) ResumeSpool(ctx context.Context) error {
	if s.cfg.Spool == "" {
		return nil
	}
	s.spoolMu.Lock()
	defer s.spoolMu.Unlock()
	return s.resumeSpool(ctx)
}

// resumeSpool uploads the pending incremental, if any, and makes it the
// chain's tip. s.spoolMu is held.
func (s *Shipper) resumeSpool(ctx context.Context) error {
	dir := filepath.Join(s.cfg.Spool, spoolRepo)
	if _, err := os.Stat(filepath.Join(dir, "clinicbox-repo.json")); err != nil {
		return nil // no spool repository yet
	}
	spool, err := archive.Open(dir)
	if err != nil {
		return err
	}
	spool.Trust(s.cfg.Signer.Public())
	pending, _, err := spool.Backups()
	if err != nil || len(pending) == 0 {
		return err
	}
	inc := pending[0]
	st, err := s.readChain()
	if err != nil || st.Tip != inc.Parent {
		// Built on a tip that is no longer the chain's: useless now.
		s.log.Warn("offsite: dropping a spooled incremental backup whose parent is not the chain's tip", "op", "offsite", "backup", inc.ID, "parent", inc.Parent)
		return spool.DeleteBackup(inc.ID)
	}
	if err := s.uploadFrom(ctx, dir, inc.ID); err != nil {
		return err
	}
	m, err := spool.StoredBlockMap(inc, s.cfg.Identities)
	if err != nil {
		return err
	}
	next := chainState{Tip: inc.ID, Depth: st.Depth + 1, FullBytes: st.FullBytes, ChainBytes: st.ChainBytes + inc.StoredBytes()}
	if err := s.setTip(m, next); err != nil {
		return err
	}
	return spool.DeleteBackup(inc.ID)
}

// uploadFull uploads a full backup from the drive and makes it the tip of
// a new chain; its block map is read (and every file checked against the
// manifest) before the upload starts.
func (s *Shipper) uploadFull(ctx context.Context, drive *archive.Repo, b *archive.Backup) error {
	m, _, err := drive.MapBackup(b, s.cfg.Identities)
	if err != nil {
		return fmt.Errorf("offsite: block map of backup %s: %w", b.ID, err)
	}
	if err := s.uploadFrom(ctx, drive.Dir, b.ID); err != nil {
		return err
	}
	return s.setTip(m, chainState{Tip: b.ID, FullBytes: b.StoredBytes()})
}

// parentMap returns the block map the next incremental builds on, or nil
// and why a full backup is due instead.
func (s *Shipper) parentMap(ctx context.Context, b *archive.Backup) (*archive.BlockMap, chainState, string) {
	if len(s.cfg.Identities) == 0 {
		return nil, chainState{}, "the box's key is not configured for incremental backups"
	}
	st, err := s.readChain()
	if errors.Is(err, os.ErrNotExist) {
		st, err = s.adoptChain(ctx)
	}
	switch {
	case errors.Is(err, errNoChain):
		return nil, st, "no backup in the vault to build on yet"
	case err != nil:
		return nil, st, err.Error()
	case st.Tip >= b.ID:
		return nil, st, fmt.Sprintf("the chain's newest backup %s is not older than %s", st.Tip, b.ID)
	case st.Depth+1 > s.maxChain():
		return nil, st, fmt.Sprintf("the chain holds %d incremental backups, the most allowed", st.Depth)
	case st.ChainBytes > st.FullBytes:
		return nil, st, fmt.Sprintf("the chain's incremental backups hold %d bytes, more than its full backup (%d)", st.ChainBytes, st.FullBytes)
	}
	var p wire.BackupProgress
	if err := s.call(ctx, "GET", "/v1/backups/"+st.Tip, nil, nil, &p); err != nil || !p.Complete {
		return nil, st, fmt.Sprintf("the vault does not hold the chain's newest backup %s (%v)", st.Tip, err)
	}
	m, err := archive.LoadBlockMap(filepath.Join(s.cfg.Spool, spoolBlockMap), st.Tip)
	if err != nil {
		s.log.Warn("offsite: the block map is damaged; a full base backup goes next", "op", "offsite", "err", err)
		return nil, st, err.Error()
	}
	return m, st, ""
}

// spoolLimit is the most an incremental backup may take in the spool.
func (s *Shipper) spoolLimit() int64 {
	if s.cfg.SpoolLimit > 0 {
		return s.cfg.SpoolLimit
	}
	return defaultSpoolLimit
}

func (s *Shipper) maxChain() int {
	if s.cfg.MaxChain > 0 {
		return s.cfg.MaxChain
	}
	return defaultMaxChain
}

func (s *Shipper) readChain() (chainState, error) {
	var st chainState
	data, err := os.ReadFile(filepath.Join(s.cfg.Spool, spoolChain))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Tip == "" {
		return st, fmt.Errorf("offsite: %s is damaged (%v); a full base backup goes next", spoolChain, err)
	}
	return st, nil
}

// setTip records a new tip: its block map first, then chain.json, each
// written durably, so a crash between them leaves a map chain.json does
// not name, which LoadBlockMap refuses.
func (s *Shipper) setTip(m *archive.BlockMap, st chainState) error {
	if err := archive.SaveBlockMap(filepath.Join(s.cfg.Spool, spoolBlockMap), m); err != nil {
		return err
	}
	return archive.SaveFile(filepath.Join(s.cfg.Spool, spoolChain), mustJSON(st))
}

// spoolRepo opens or creates the spool repository, with the drive's
// identity.
func (s *Shipper) spoolRepo(info archive.Info) (*archive.Repo, error) {
	return archive.Create(filepath.Join(s.cfg.Spool, spoolRepo), info, s.cfg.Signer)
}
