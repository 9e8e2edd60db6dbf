package offsite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// A box whose spool knows no chain (a replacement box that took over the
// old one's tailnet identity, or a /perm that was wiped) asks the vault
// what it holds before sending a full backup: it continues the chain of
// the newest backup there, rebuilding that backup's block map from the
// vault. An incremental backup carries its map (encrypted and signed, a few
// MiB); a full one's map is computed while its archives stream down, so
// nothing of them is kept on /perm and the box's downlink, not its slow
// uplink, carries the cost. Only the backups' records and signatures are
// copied into the spool (spoolAdopt) for the time it takes; every file read
// is checked against the content hash the box signed.
const (
	spoolAdopt = "adopt"
	// maxMetaFile bounds a backup's record, signature or verification
	// fetched from the vault.
	maxMetaFile = 1 << 20
)

// errNoChain means the vault holds no complete backup to build on.
var errNoChain = errors.New("offsite: the vault holds no base backup to build on yet")

// metaFiles are the files of a backup's directory a chain walk reads.
var metaFiles = []string{"backup.json", "backup.json.age", "backup.sig", "verify.json"}

// adoptChain rebuilds the spool's chain from the vault's newest complete
// backup and returns it (wrapping errNoChain when there is none).
func (s *Shipper) adoptChain(ctx context.Context) (chainState, error) {
	var list []wire.FileEntry
	if err := s.call(ctx, "GET", "/v1/files", nil, nil, &list); err != nil {
		if c, _ := code(err); c == "not_found" {
			return chainState{}, errNoChain
		}
		return chainState{}, err
	}
	dir := filepath.Join(s.cfg.Spool, spoolAdopt)
	if err := os.RemoveAll(dir); err != nil {
		return chainState{}, fmt.Errorf("offsite: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := s.fetchMeta(ctx, list, dir); err != nil {
		return chainState{}, err
	}
	r, err := archive.Open(dir)
	if err != nil {
		return chainState{}, err
	}
	r.Trust(s.cfg.Signer.Public())
	r.FetchFrom(func(rel string) (io.ReadCloser, error) { return s.vault.open(ctx, rel) })
	tip, err := s.newestComplete(ctx, r, list)
	if err != nil {
		return chainState{}, err
	}
	return s.adoptTip(r, tip)
}

// adoptTip records tip as the chain's tip with its block map.
func (s *Shipper) adoptTip(r *archive.Repo, tip *archive.Backup) (chainState, error) {
	chain, err := r.Chain(tip)
	if err != nil {
		return chainState{}, err
	}
	var m *archive.BlockMap
	if tip.Kind == archive.KindIncremental {
		m, err = r.StoredBlockMap(tip, s.cfg.Identities)
	} else {
		m, _, err = r.MapBackup(tip, s.cfg.Identities)
	}
	if err != nil {
		return chainState{}, fmt.Errorf("offsite: block map of the vault's backup %s: %w", tip.ID, err)
	}
	st := chainState{Tip: tip.ID, Depth: len(chain) - 1, FullBytes: chain[0].StoredBytes()}
	for _, b := range chain[1:] {
		st.ChainBytes += b.StoredBytes()
	}
	if err := s.setTip(m, st); err != nil {
		return chainState{}, err
	}
	s.log.Info("offsite: continuing the vault's chain", "op", "offsite", "backup", tip.ID, "depth", st.Depth, "blocks", m.Blocks())
	return st, nil
}

// fetchMeta copies the repository's record and each backup's metadata
// files from the vault into dir.
func (s *Shipper) fetchMeta(ctx context.Context, list []wire.FileEntry, dir string) error {
	for _, f := range list {
		rel := f.Path
		if rel != "clinicbox-repo.json" && !(strings.HasPrefix(rel, "backups/") && slices.Contains(metaFiles, path.Base(rel))) {
			continue
		}
		local := filepath.Join(dir, filepath.FromSlash(rel))
		if !filepath.IsLocal(filepath.FromSlash(rel)) || f.Size > maxMetaFile {
			return fmt.Errorf("offsite: the vault listed %q (%d bytes), not a file the box wrote", rel, f.Size)
		}
		if err := s.fetchSmall(ctx, rel, local); err != nil {
			return err
		}
	}
	return nil
}

// fetchSmall copies one small file of the vault's repository to local.
func (s *Shipper) fetchSmall(ctx context.Context, rel, local string) error {
	ctx, cancel := context.WithTimeout(ctx, reqTimeout)
	defer cancel()
	rc, err := s.vault.open(ctx, rel)
	if err != nil {
		return err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxMetaFile+1))
	if err != nil || len(data) > maxMetaFile {
		return fmt.Errorf("offsite: fetch %s from the vault: %d bytes, %v", rel, len(data), err)
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return fmt.Errorf("offsite: %w", err)
	}
	return os.WriteFile(local, data, 0o600) // a scratch copy: no fsync needed
}

// newestComplete is the newest backup the vault lists and says is complete.
func (s *Shipper) newestComplete(ctx context.Context, r *archive.Repo, list []wire.FileEntry) (*archive.Backup, error) {
	var ids []string
	for _, f := range list {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(f.Path, "backups/"), "/backup.json"); ok && !strings.Contains(id, "/") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range slices.Backward(ids) {
		var p wire.BackupProgress
		if err := s.call(ctx, "GET", "/v1/backups/"+id, nil, nil, &p); err != nil {
			return nil, err
		}
		if p.Complete {
			return r.Backup(id)
		}
	}
	return nil, errNoChain
}

// open streams one file of the box's repository in the vault.
func (c *client) open(ctx context.Context, rel string) (io.ReadCloser, error) {
	_, base := c.base()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/files/"+rel, nil)
	if err != nil {
		return nil, fmt.Errorf("offsite: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("offsite: fetch %s: %w", rel, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("offsite: fetch %s: the vault answered %s", rel, resp.Status)
	}
	return resp.Body, nil
}
