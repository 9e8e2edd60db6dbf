package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
)

// The vault's own audit log goes into the bucket as it grows, so that the
// record of who read or wrote what survives the vault node. Like a box's
// logs it is stored by offset and never replaced, under
// vault.audit/NODE/FILE/OFFSET: NODE is the node's name, FILE the first
// 16 hex digits of the SHA-256 of the file's first line, so that a node
// whose disk was replaced starts a new file beside the old one. Each pass
// stores whole lines only: an entry being appended is left to the next.

// auditPrefix holds the vault nodes' audit logs; a dot keeps it from any
// namespace's name.
const auditPrefix = "vault.audit/"

// maxAuditPass bounds what one pass stores of the audit log; the rest
// goes in the next.
const maxAuditPass = 16 << 20

// auditStored is what the bucket holds of this node's audit log.
type auditStored struct {
	prefix string // vault.audit/NODE/FILE/
	end    int64
}

// size returns the audit log's size; entries are appended under a.mu.
func (a *auditLog) size() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fi, err := a.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// offloadAudit stores the lines the vault's audit log gained since the
// last pass. An unchanged log costs no request.
func (v *Vault) offloadAudit(ctx context.Context) error {
	size, err := v.audit.size()
	if err != nil || size == 0 {
		return err
	}
	v.offMu.Lock()
	stored := v.auditStored
	v.offMu.Unlock()
	st := v.cfg.Bucket.Store()
	if stored == nil {
		if stored, err = v.auditInBucket(ctx); err != nil {
			return err
		}
	}
	if size <= stored.end {
		v.setAuditStored(stored)
		return nil
	}
	f, err := os.Open(v.cfg.AuditLog)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, min(size-stored.end, maxAuditPass))
	if _, err := io.ReadFull(io.NewSectionReader(f, stored.end, int64(len(buf))), buf); err != nil {
		return fmt.Errorf("vault: the audit log: %w", err)
	}
	whole := bytes.LastIndexByte(buf, '\n') + 1
	if whole == 0 {
		return nil // one entry still being appended
	}
	key := fmt.Sprintf("%s%016d", stored.prefix, stored.end)
	if _, err := st.PutIfAbsent(ctx, key, bytes.NewReader(buf[:whole]), int64(whole)); err != nil {
		v.setAuditStored(nil) // listed again next time
		return fmt.Errorf("vault: store the audit log: %w", err)
	}
	v.setAuditStored(&auditStored{prefix: stored.prefix, end: stored.end + int64(whole)})
	return nil
}

func (v *Vault) setAuditStored(s *auditStored) {
	v.offMu.Lock()
	defer v.offMu.Unlock()
	v.auditStored = s
}

// auditInBucket finds where this node's audit log stands in the bucket.
func (v *Vault) auditInBucket(ctx context.Context) (*auditStored, error) {
	f, err := os.Open(v.cfg.AuditLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	first := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, first)
	line, _, found := bytes.Cut(first[:n], []byte("\n"))
	if !found {
		return nil, fmt.Errorf("vault: the audit log's first line is longer than %d bytes or not yet whole", len(first))
	}
	sum := sha256.Sum256(line)
	node := v.cfg.Node
	if node == "" {
		node = "vault"
	}
	prefix := path.Join(auditPrefix, namespace(node), hex.EncodeToString(sum[:8])) + "/"
	parts, err := partsUnder(ctx, v.cfg.Bucket.Store(), prefix, "the vault's audit log")
	if err != nil {
		return nil, err
	}
	return &auditStored{prefix: prefix, end: partsEnd(parts)}, nil
}
